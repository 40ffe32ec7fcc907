"""The multi-machine deployment files, checked without a Docker engine (none runs here).

The compose file must be a consistent service graph (every dependency exists and is healthy
when required, every component shares the executor, broker, metadata DB and JWT secret), and
the Dockerfile must install the package the way the README does, from files that exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def expand(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the defaults."""
    return _VAR.sub(lambda m: m.group(2) or "", value)


def env_of(name: str) -> dict[str, str]:
    return {k: expand(str(v)) for k, v in SERVICES[name].get("environment", {}).items()}


def test_compose_has_the_official_airflow3_components() -> None:
    for service, command in AIRFLOW_SERVICES.items():
        assert SERVICES[service]["command"] == command
    assert {"postgres", "store", "redis", "airflow-init"} <= set(SERVICES)
    emulators = {n for n, s in SERVICES.items() if "emulators" in s.get("profiles", [])}
    assert emulators == {"hub-emulator", "llm-emulator"}
    # Started before Airflow when the profile is up, not needed otherwise.
    for service in AIRFLOW_SERVICES:
        for emulator in emulators:
            assert SERVICES[service]["depends_on"][emulator]["required"] is False


def test_every_dependency_exists_and_healthy_conditions_have_healthchecks() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        for dep, rule in depends.items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{dep} has no healthcheck for {name}"
            if rule["condition"] == "service_completed_successfully":
                assert dep == "airflow-init"


def test_airflow_components_share_executor_broker_metadata_and_secret() -> None:
    envs = [env_of(s) for s in [*AIRFLOW_SERVICES, "airflow-init"]]
    keys = (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD",
        "AIRFLOW__CORE__FERNET_KEY_CMD",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    )
    for key in keys:
        assert len({env[key] for env in envs}) == 1, f"{key} differs between components"
    env = envs[0]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
    postgres = SERVICES["postgres"]["environment"]
    user, password, db = (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert f"{user}:{password}@postgres/{db}" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
        "http://airflow-apiserver:8080/"
    )
    assert "8080:8080" in SERVICES["airflow-apiserver"]["ports"]


def test_store_connection_points_at_the_store_service() -> None:
    store = SERVICES["store"]["environment"]
    url = env_of("airflow-scheduler")["AIRFLOW_CONN_DYNOSAUR_STORE"]
    expected = (
        f"{store['POSTGRES_USER']}:{store['POSTGRES_PASSWORD']}@store:5432/{store['POSTGRES_DB']}"
    )
    assert expected in url
    init = " ".join(SERVICES["airflow-init"]["command"])
    assert "airflow db migrate" in init and "airflow pools set llm" in init
    assert "dynosaur db upgrade" in init and expected in init


def test_compose_connections_map_onto_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON connections in the compose file are what dynosaur/airflow/connections.py reads."""
    from dynosaur.airflow.connections import settings_from_airflow

    env = env_of("airflow-scheduler")
    for key, value in env.items():
        if key.startswith("AIRFLOW_CONN_"):
            if value.lstrip().startswith("{"):
                json.loads(value)  # valid JSON once compose has substituted the defaults
            monkeypatch.setenv(key, value)
    settings = settings_from_airflow()
    assert settings.database_url is not None and "@store:5432/dynosaur" in settings.database_url
    assert settings.llm_base_url == "https://api.openai.com/v1"
    assert settings.hub_endpoint == "https://huggingface.co"
    assert settings.viewer_url == "https://datasets-server.huggingface.co"
    assert settings.llm_model == "gpt-4o-mini"


def _dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def test_dockerfile_extends_the_pinned_official_image() -> None:
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$", _dockerfile(), re.M)
    assert base, "the image extends the official apache/airflow image"
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    assert pinned and base.group(1) == pinned.group(1)
    assert base.group(2) == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_dockerfile_installs_the_package_like_the_readme() -> None:
    text = re.sub(r"\\\n\s*", " ", _dockerfile())  # join continued lines
    install = re.search(r'pip install .*-c (\S+constraints\.txt) "(\S+)\[\$\{EXTRAS\}\]"', text)
    assert install, "pip install with the constraints file and the EXTRAS build argument"
    extras = re.search(r"^ARG EXTRAS=(\S+)$", text, re.M).group(1).split(",")
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(extras) <= set(declared)
    copied = re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", text, re.M)
    sources = {src for line in copied for src in line.split()}
    assert {"pyproject.toml", "constraints.txt", "dynosaur", "sql", "dags"} <= sources
    for src in sources:
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which does not exist"
    readme = (REPO / "README.md").read_text() + (REPO / "Makefile").read_text()
    assert "-c constraints.txt" in readme, "the README's install uses the same constraints file"


def test_wheel_carries_the_migrations_views_and_dags(tmp_path: Path) -> None:
    """A non-editable install (the image's, a user's pip install) must still find sql/ and the
    DAG files (``dynosaur airflow standalone``) inside the package."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("dynosaur-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "dynosaur/sql/migrations/0001_core.sql" in names
    assert any(n.startswith("dynosaur/sql/views/") for n in names)
    assert "dynosaur/store/migrations.py" in names
    assert {f"dynosaur/dags/{p.name}" for p in (REPO / "dags").glob("*.py")} <= names


# --- Safe by default: rendered with no variable set -----------------------------------------------

SECRET_KEYS = re.compile(r"SECRET|FERNET|PASSWORD|TOKEN|API_KEY", re.I)


def test_with_no_variable_set_no_secret_has_a_fixed_value() -> None:
    """Secrets come from files airflow-init generates (``_CMD``, a passwords file), or are
    empty: never a fixed default someone could guess."""
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = env_of(name)
        assert "AIRFLOW__API_AUTH__JWT_SECRET" not in env
        assert "AIRFLOW__CORE__FERNET_KEY" not in env
        assert env["AIRFLOW__API_AUTH__JWT_SECRET_CMD"] == "cat /opt/airflow/secrets/jwt_secret"
        assert env["AIRFLOW__CORE__FERNET_KEY_CMD"] == "cat /opt/airflow/secrets/fernet_key"
        passwords = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        assert passwords.startswith("/opt/airflow/secrets/")
        for key, value in env.items():
            if SECRET_KEYS.search(key) and not key.endswith(("_CMD", "_FILE")):
                assert value == "", f"{name}: {key} has a fixed value"
        for conn in ("AIRFLOW_CONN_DYNOSAUR_LLM", "AIRFLOW_CONN_DYNOSAUR_HUB"):
            assert json.loads(env[conn]).get("password", "") == ""
    init = SERVICES["airflow-init"]["command"][-1]
    for secret in ("jwt_secret", "fernet_key", "passwords.json"):
        assert f"[ -s {secret} ] ||" in init, secret  # generated once, kept afterwards
    assert "secrets.token_urlsafe" in init and "Fernet.generate_key" in init
    assert "airflow-secrets:/opt/airflow/secrets" in SERVICES["airflow-scheduler"]["volumes"]


def test_the_login_comment_names_what_exists() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert "_AIRFLOW_WWW_USER" not in text
    users = env_of("airflow-apiserver")["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert users.split(":")[0] == "admin" and "user `admin`" in text
    assert "cat /opt/airflow/secrets/passwords.json" in text


def test_init_creates_and_owns_the_mounted_folders() -> None:
    init = SERVICES["airflow-init"]["command"][-1]
    mounted = {
        v.rsplit(":", 1)[1] for v in SERVICES["airflow-scheduler"]["volumes"] if v.startswith("${")
    }
    assert mounted == {"/opt/airflow/dags", "/opt/airflow/logs", "/opt/airflow/exports"}
    made, owned = init.split("chown", 1)
    for folder in mounted:
        assert folder in made, f"mkdir {folder}"
        assert folder in owned.split("airflow db migrate")[0], f"chown {folder}"
    assert 'chown -R "${AIRFLOW_UID:-50000}:0"' in init
    assert SERVICES["airflow-init"]["user"] == "0:0"


def test_dags_start_paused_unless_the_emulators_profile_is_up() -> None:
    from dynosaur.airflow.compose import PAUSED, compose_env, emulators_present

    for service in AIRFLOW_SERVICES:
        entry = SERVICES[service]["entrypoint"]
        assert entry[:3] == ["python", "-m", "dynosaur.airflow.compose"]
        assert entry[3:] == ["/usr/bin/dumb-init", "--", "/entrypoint"]  # the image's own
    env = env_of("airflow-scheduler")
    assert env[PAUSED] == "true"  # as rendered: paused

    real = compose_env(env, offline=False)
    assert real[PAUSED] == "True"
    assert "huggingface.co" in json.loads(real["AIRFLOW_CONN_DYNOSAUR_HUB"])["host"]

    offline = compose_env(env, offline=True)
    assert offline[PAUSED] == "False"
    hub = json.loads(offline["AIRFLOW_CONN_DYNOSAUR_HUB"])
    llm = json.loads(offline["AIRFLOW_CONN_DYNOSAUR_LLM"])
    ports = {name: SERVICES[name]["entrypoint"][-1] for name in ("hub-emulator", "llm-emulator")}
    assert hub["host"] == f"http://hub-emulator:{ports['hub-emulator']}"
    assert hub["extra"]["viewer_url"] == hub["host"]
    assert llm["host"] == f"http://llm-emulator:{ports['llm-emulator']}/v1"
    # Which mode: whether the emulators' service name resolves (here: localhost does).
    assert emulators_present("localhost") and not emulators_present("hub-emulator.invalid")


def test_the_offline_connections_map_onto_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from dynosaur.airflow.compose import compose_env
    from dynosaur.airflow.connections import settings_from_airflow

    for key, value in compose_env(env_of("airflow-scheduler"), offline=True).items():
        if key.startswith("AIRFLOW_CONN_"):
            monkeypatch.setenv(key, value)
    settings = settings_from_airflow()
    assert settings.hub_endpoint == settings.viewer_url == "http://hub-emulator:8000"
    assert settings.llm_base_url == "http://llm-emulator:8001/v1"
    assert settings.llm_api_key is not None


def test_docker_compose_config_passes_with_no_variable_set() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client here")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker client has no compose plugin here")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DYNOSAUR_"))}
    for profile in ([], ["--profile", "emulators"]):
        done = subprocess.run(
            [docker, "compose", *profile, "config", "-q"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_the_build_context_leaves_out_the_venv_and_local_data() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "logs", "exports"} <= set(ignored)
    copied = re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", _dockerfile(), re.M)
    for src in {s for line in copied for s in line.split()}:
        assert src not in ignored, f"the Dockerfile copies {src}, which .dockerignore leaves out"


def test_run_notes_use_the_api_as_the_generated_admin(tmp_path: Path) -> None:
    from dynosaur.airflow.compose import compose_env

    env = env_of("airflow-scheduler")
    assert "AIRFLOW_CONN_DYNOSAUR_AIRFLOW_API" not in compose_env(env, offline=False)  # no file yet
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "generated-pw"}))
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    api = json.loads(compose_env(env, offline=True)["AIRFLOW_CONN_DYNOSAUR_AIRFLOW_API"])
    assert api["host"] == "http://airflow-apiserver:8080"
    assert (api["login"], api["password"]) == ("admin", "generated-pw")
    assert "8080:8080" in SERVICES["airflow-apiserver"]["ports"]
