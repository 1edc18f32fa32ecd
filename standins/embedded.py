"""Embedded mode's stand-ins for Supabase, as the program hands them to the product (`backend.compose.embedded`):
the Storage stand-in served in the API and reached in-process, the demo page's sign-in, the project keys kept in
the data directory, and the address of the database embedded mode runs. `voicegate`'s commands, the operator
scripts and the tests' apps take them from here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from backend.settings import Settings, with_auth
from standins.dev_keys import DataDirKeys
from standins.dev_sign_in import open_dev_session
from standins.postgres import for_data_dir
from standins.storage.in_process import api_storage_router, in_process_client
from standins.storage.routes import STORAGE_PATH, storage_errors_under

if TYPE_CHECKING:
    from litestar import Litestar, Router
    from litestar.types import ExceptionHandler

    from backend.auth.dev_session import DevSession
    from backend.auth.verify import TokenVerifier
    from backend.db.units import Database
    from backend.secret import Secret
    from backend.storage.client import SupabaseObjectStorage


class StandIns:
    """`backend.compose.embedded.EmbeddedMode` over the stand-ins of this package."""

    storage_path: Final = STORAGE_PATH

    def storage_router(self, db: Database, verifier: TokenVerifier, jwt_secret: Secret, root: Path) -> Router:
        """`/storage/v1` for the API (`api_storage_router`)."""
        return api_storage_router(db, verifier, jwt_secret, root)

    def storage_errors(self, fallback: ExceptionHandler[Exception]) -> ExceptionHandler[Exception]:
        """Storage's own errors under `/storage/v1` (`storage_errors_under`)."""
        return storage_errors_under(fallback)

    def storage_client(
        self, app: Litestar, service_key: str, *, public_url: str | None, version_ttl: float
    ) -> SupabaseObjectStorage:
        """The client over `app`'s own `/storage/v1` (`in_process_client`)."""
        return in_process_client(app, service_key, public_url=public_url, version_ttl=version_ttl)

    async def dev_session(self, db: Database, secret: Secret) -> DevSession:
        """The local user's session (`open_dev_session`)."""
        return await open_dev_session(db, secret)


#: What every embedded-mode app is given.
EMBEDDED: Final = StandIns()


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
