"""What embedded mode adds to the API process: the Storage stand-in mounted at `/storage/v1`, answering its own
errors and reached in-process by the Storage client production uses, and the demo page's sign-in for the local
user. The program that runs embedded mode hands it in (`standins.in_app.EMBEDDED`), as it hands in the consumers
to run: `backend/` stands below the stand-ins for Supabase and does not import them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from litestar import Litestar, Router
    from litestar.types import ExceptionHandler

    from backend.auth.dev_session import DevSession
    from backend.auth.verify import TokenVerifier
    from backend.db.units import Database
    from backend.secret import Secret
    from backend.storage.client import SupabaseObjectStorage


class EmbeddedMode(Protocol):
    """The stand-ins an API process in embedded mode serves and uses."""

    @property
    def storage_path(self) -> str:
        """Where the Storage stand-in's routes are mounted (`/storage/v1`, as in a Supabase project)."""
        ...

    def storage_router(self, db: Database, verifier: TokenVerifier, jwt_secret: Secret, root: Path) -> Router:
        """The stand-in's routes over `db` and the files under `root`, its URL tokens signed with `jwt_secret`."""
        ...

    def storage_errors(self, fallback: ExceptionHandler[Exception]) -> ExceptionHandler[Exception]:
        """The app's exception handler: Storage's own errors under `storage_path`, `fallback` elsewhere."""
        ...

    def storage_client(
        self, app: Litestar, service_key: str, *, public_url: str | None, version_ttl: float
    ) -> SupabaseObjectStorage:
        """The Storage client over `app`'s own stand-in, reached without a socket."""
        ...

    async def dev_session(self, db: Database, secret: Secret) -> DevSession:
        """A session for the local user (created on first use), its token signed with `secret`."""
        ...
