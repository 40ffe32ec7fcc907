"""Airflow connections mapped onto :class:`~dynosaur.settings.Settings`.

Three connections, all optional; what a connection does not set comes from ``DYNOSAUR_*``:

- ``dynosaur_store``: a Postgres connection (host, port, login, password, schema = database).
- ``dynosaur_llm``: ``host`` = the OpenAI-compatible base URL, ``password`` = API key; extras
  ``model``, ``concurrency``, ``prices`` (``{"model": {"input": .., "output": ..}}``).
- ``dynosaur_hub``: ``host`` = Hub endpoint, ``password`` = token; extra ``viewer_url``.

Airflow is imported lazily so the library never needs it installed.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import URL, Engine

from dynosaur.settings import Settings, get_settings

log = logging.getLogger(__name__)

STORE_CONN_ID = "dynosaur_store"
LLM_CONN_ID = "dynosaur_llm"
HUB_CONN_ID = "dynosaur_hub"


def _connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or None when it is not defined."""
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception:  # AirflowNotFoundException and friends: an unset connection is fine
        log.debug("Airflow connection %s is not defined; using DYNOSAUR_* settings", conn_id)
        return None


def _store_url(conn: Any) -> str:
    # A Unix-socket server (e.g. the embedded one) has no host; its folder is the `host` extra.
    socket_dir = None if conn.host else (conn.extra_dejson or {}).get("host")
    return URL.create(
        "postgresql",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
        query={"host": socket_dir} if socket_dir else {},
    ).render_as_string(hide_password=False)


def _with_scheme(host: str) -> str:
    return host if "://" in host else f"http://{host}"


def settings_from_airflow(**overrides: Any) -> Settings:
    """Settings from the Airflow connections, ``DYNOSAUR_*`` variables and ``overrides``."""
    values: dict[str, Any] = {}
    if (store := _connection(STORE_CONN_ID)) is not None:
        values["database_url"] = _store_url(store)
    if (llm := _connection(LLM_CONN_ID)) is not None:
        if llm.host:
            values["llm_base_url"] = _with_scheme(llm.host)
        if llm.password:
            values["llm_api_key"] = llm.password
        extra = llm.extra_dejson or {}
        for key, field in (("model", "llm_model"), ("concurrency", "llm_concurrency")):
            if extra.get(key) is not None:
                values[field] = extra[key]
        if extra.get("prices"):
            values["llm_prices"] = {**get_settings().llm_prices, **extra["prices"]}
    if (hub := _connection(HUB_CONN_ID)) is not None:
        if hub.host:
            values["hub_endpoint"] = _with_scheme(hub.host)
        if hub.password:
            values["hub_token"] = hub.password
        if (hub.extra_dejson or {}).get("viewer_url"):
            values["viewer_url"] = hub.extra_dejson["viewer_url"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return get_settings(**values)


def settings_and_store() -> tuple[Settings, Engine]:
    """What every task body starts with: the settings from the Airflow connections and the
    store, reachable and migrated."""
    from dynosaur.store import open_store

    settings = settings_from_airflow()
    return settings, open_store(settings)
