"""``dynosaur airflow standalone``: Airflow's own ``airflow standalone`` with our DAGs, the ``llm``
pool and our connections, and the emulators when no real endpoint is configured.

The connections travel as ``AIRFLOW_CONN_*`` variables in the environment of the processes
started here, never in a file or a log. The admin password is generated once per Airflow home.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from dynosaur.airflow import setup
from dynosaur.airflow.notes import API_CONN_ID
from dynosaur.errors import UsageError
from dynosaur.settings import Settings

ADMIN = "admin"


@dataclass(frozen=True)
class Standalone:
    """Where the started Airflow listens and how to log in."""

    home: Path
    url: str
    password: str
    passwords_file: Path
    emulators: bool


def uses_real_endpoints(settings: Settings) -> bool:
    """Whether the settings name a real LLM or Hub (a key, or an endpoint other than the
    defaults): then the DAGs must not be pointed at the emulators by default."""
    defaults = Settings.model_fields
    return (
        settings.llm_api_key is not None
        or settings.llm_base_url != defaults["llm_base_url"].default
        or settings.hub_endpoint != defaults["hub_endpoint"].default
    )


def admin_password(home: Path) -> tuple[Path, str]:
    """The admin password, generated once per Airflow home and kept in its passwords file."""
    path = home / "passwords.json"
    if path.exists():
        return path, json.loads(path.read_text())[ADMIN]
    password = secrets.token_urlsafe(12)
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({ADMIN: password}))
    path.chmod(0o600)
    return path, password


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_standalone(
    settings: Settings,
    *,
    home: Path,
    port: int,
    emulators: bool | None = None,
    on_step: Callable[[str], None] | None = None,
    on_ready: Callable[[Standalone], None] | None = None,
) -> int:
    """Prepare ``home`` and run ``airflow standalone`` until it exits or this process is
    interrupted (Ctrl-C, SIGTERM), which stops it. Returns its exit status (0 when stopped here).

    ``emulators`` None: the emulators when no real endpoint is configured (see
    :func:`uses_real_endpoints`). Offline the DAGs start unpaused; against real endpoints (real
    money) they start paused.
    """
    from dynosaur.store import open_store

    say = on_step or (lambda _message: None)
    use_emulators = not uses_real_endpoints(settings) if emulators is None else emulators
    with ExitStack() as stack:
        if use_emulators:
            from dynosaur.emulators.hub import HubEmulator
            from dynosaur.emulators.llm import LLMEmulator

            hub = stack.enter_context(HubEmulator())
            llm = stack.enter_context(LLMEmulator())
            settings = settings.model_copy(
                update={"hub_endpoint": hub.url, "viewer_url": hub.url,
                        "llm_base_url": llm.base_url, "llm_api_key": SecretStr("sk-emulator")}
            )  # fmt: skip
            say(f"Hub emulator on {hub.url}, LLM emulator on {llm.base_url}")
        elif settings.llm_api_key is None:
            raise UsageError("--real needs DYNOSAUR_LLM_API_KEY (or use the emulators)")
        open_store(settings)  # the store is reachable and migrated before any DAG runs
        passwords, password = admin_password(home)
        env = {
            **setup.airflow_env(home, paused=not use_emulators),
            **setup.connection_env(settings),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            # Run notes go through the REST API (DAG callbacks run without metadata access).
            f"AIRFLOW_CONN_{API_CONN_ID.upper()}": json.dumps(
                {
                    "conn_type": "http",
                    "host": f"http://localhost:{port}",
                    "login": ADMIN,
                    "password": password,
                }
            ),
        }
        say(f"preparing {home} (metadata database, llm pool) …")
        setup.prepare_home(home, env)
        if on_ready:
            on_ready(
                Standalone(
                    home=home,
                    url=f"http://localhost:{port}",
                    password=password,
                    passwords_file=passwords,
                    emulators=use_emulators,
                )
            )
        airflow = setup.airflow_bin()
        # `airflow standalone` starts its components as `airflow ...` found on PATH.
        path = os.pathsep.join([str(Path(airflow).parent), os.environ.get("PATH", "")])
        proc = subprocess.Popen(
            [airflow, "standalone"],
            env={**os.environ, **env, "PATH": path},
            start_new_session=True,
        )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return 0 if proc.returncode in (0, -signal.SIGTERM) else proc.returncode
