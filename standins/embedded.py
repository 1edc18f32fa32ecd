"""Embedded mode's settings as the program reads them: the project keys kept in the data directory, and the
address of the database embedded mode runs. `voicegate`'s commands, the operator scripts and the tests take them
from here; the stand-ins the app serves are `standins.in_app`. Nothing here loads the web framework, which the
worker and the operator scripts do without."""

from __future__ import annotations

from collections.abc import Mapping

from backend.settings import Settings, with_auth
from standins.dev_keys import DataDirKeys
from standins.postgres import for_data_dir


def with_auth_keys(settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """`settings` with its auth settings read (`backend.settings.with_auth`), in embedded mode with the keys its
    data directory keeps (the JWT secret created on first use, the service_role and anon keys it signs)."""
    return with_auth(settings, env, DataDirKeys(settings.data_dir) if settings.embedded else None)


def database_dsn(settings: Settings) -> str:
    """The database every voicegate process connects to (the API, the worker, `token`, the operator scripts):
    DATABASE_URL, else the embedded PostgreSQL running for the data directory, over its Unix socket (or on
    whatever port it runs). Raises `standins.postgres.EmbeddedPostgresError` (one line for the user)
    when none runs."""
    if settings.database_url is not None:
        return settings.database_url
    return for_data_dir(settings.data_dir, settings.pg_port).running_dsn()
