"""The Storage stand-in as embedded mode runs it: its routes mounted in the API at `/storage/v1` (or served in an
operator script's process: `standalone_storage`), reached in-process by the very client production uses against
Supabase Storage."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, Router

from backend.auth.verify import ANON_ROLE, TokenVerifier
from backend.db.pool import PoolLimits, create_pool
from backend.db.units import Database
from backend.errors import Unauthorized
from backend.secret import Secret
from backend.storage.client import SupabaseObjectStorage
from standins.storage.routes import storage_router

#: Where the in-process client addresses the stand-in (no socket: an ASGI transport carries it).
IN_PROCESS_URL = "http://voicegate.internal/storage/v1"


def api_storage_router(db: Database, verifier: TokenVerifier, jwt_secret: Secret, root: Path) -> Router:
    """`/storage/v1` for the API over the files under `root`: callers authenticate with a user's access
    token or the service key, and URL tokens are signed with the project's `jwt_secret`, as Supabase
    Storage does."""

    async def caller_claims(token: str) -> Mapping[str, Any]:
        """A user's access token, the anon key (which acts as `anon`, and so may do nothing with voicegate's
        buckets), or the service key: Storage takes the database role from the token, as Supabase does."""
        try:
            return (await verifier.verify_user(token)).raw
        except Unauthorized:
            if verifier.api_key_role(token) == ANON_ROLE:
                return {"role": ANON_ROLE}
            verifier.verify_service(token)
            return {"role": "service_role"}

    return storage_router(db, jwt_secret.reveal(), root, caller_claims)


def in_process_client(
    app: Litestar, service_key: str, *, public_url: str | None = None, version_ttl: float = 0.0
) -> SupabaseObjectStorage:
    """The storage client over `app`'s own `/storage/v1`, through httpx's ASGI transport; signed URLs
    handed out point at `public_url` (where clients reach the API). `version_ttl` as `SupabaseObjectStorage`'s."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar is an ASGI app; httpx's scope types are wider
    return SupabaseObjectStorage(
        IN_PROCESS_URL, service_key, public_url=public_url, transport=transport, version_ttl=version_ttl
    )


def standalone_client(db: Database, root: Path) -> SupabaseObjectStorage:
    """A client of the stand-in over `db` and the files under `root`, served in this process by an app of its own
    (no API): authenticated by a key made up for this run; the caller closes it."""
    service_key = secrets.token_urlsafe(32)

    async def caller(token: str) -> Mapping[str, Any]:
        if not hmac.compare_digest(token, service_key):
            raise PermissionError("not this run's key")
        return {"role": "service_role"}

    # Signing secret for URL tokens, which this client never asks for.
    # logging_config=None: Litestar's default would start a QueueListener thread per app, left running.
    app = Litestar(route_handlers=[storage_router(db, secrets.token_urlsafe(48), root, caller)], logging_config=None)
    return in_process_client(app, service_key)


@asynccontextmanager
async def standalone_storage(dsn: str, root: Path) -> AsyncIterator[SupabaseObjectStorage]:
    """The Storage stand-in over `root`, served in this process without the API (operator scripts), over a small
    pool of its own: it removes rows in `storage.objects` and files under `root` exactly as a request to a running
    API would."""
    from backend.compose.parts import open_database  # noqa: PLC0415 - it loads the providers: only a run serving Storage pays

    async with AsyncExitStack() as stack:
        # An operator script waits longer for the database than a request does.
        pool = create_pool(dsn, PoolLimits(min_size=1, max_size=2, connect_timeout=10, work_timeout=10))
        db = await open_database(stack, pool, wait=True)
        yield await stack.enter_async_context(standalone_client(db, root))
