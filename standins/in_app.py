"""Embedded mode's stand-ins as the program hands them to the app (`backend.compose.embedded`): the Storage
stand-in served in the API and reached in-process, and the demo page's sign-in. `voicegate serve` and `up` and the
tests' apps take `EMBEDDED` from here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from standins.dev_sign_in import open_dev_session
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
