"""Fixtures for the Storage stand-in: a migrated database, the `/storage/v1` app served over real HTTP
on 127.0.0.1, access tokens for users and the service, and the stock storage3 client."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from litestar import Litestar
from storage3 import AsyncStorageClient

from backend.db.pool import Pool, create_pool
from backend.db.units import Database
from backend.settings import Settings
from devkit.db import create_user
from fakes.server import serve
from standins.storage.routes import storage_router

# One secret signs access tokens and URL tokens, as the lead wires it (the project JWT secret).
SECRET = "storage-test-secret-0123456789abcdef-0123456789"


def access_token(claims: dict[str, Any], lifetime: int = 3600) -> str:
    """An HS256 access token like Supabase Auth's (or the service key's) with `claims`."""
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + lifetime, **claims}, SECRET, algorithm="HS256")


def user_token(user_id: uuid.UUID) -> str:
    """A signed-in user's access token."""
    return access_token({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"})


SERVICE_KEY = access_token({"role": "service_role", "iss": "supabase"}, lifetime=10 * 365 * 86400)


async def verify_access_token(token: str) -> dict[str, Any]:
    """The test stand-in for the auth module: HS256 with a fixed algorithm list, a role is required."""
    claims: dict[str, Any] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"require": ["exp", "role"], "verify_aud": False}
    )
    return claims


class _OpenPoolOnFirstRequest:
    """ASGI wrapper that opens the pool inside the server's own event loop (uvicorn runs in a thread
    with its own loop, and an async pool belongs to the loop that opened it)."""

    def __init__(self, app: Any, pool: Pool) -> None:
        self._app = app
        self._pool = pool
        self._opening: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._opening is None:
            self.loop = asyncio.get_running_loop()
            self._opening = asyncio.ensure_future(self._pool.open(wait=True))
        await asyncio.shield(self._opening)
        await self._app(scope, receive, send)

    def close_pool(self) -> None:
        """Close the pool in the loop that opened it (call while the server still runs)."""
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(self._pool.close(), self.loop).result(timeout=10)


@dataclass(frozen=True)
class StorageServer:
    """The served stand-in and what tests need to look behind it."""

    base_url: str
    root: Path
    dsn: str

    @property
    def storage_url(self) -> str:
        """The Storage base URL clients are given."""
        return f"{self.base_url}/storage/v1"

    def client(self, token: str) -> AsyncStorageClient:
        """The stock storage3 client acting with `token`."""
        return AsyncStorageClient(
            url=f"{self.storage_url}/", headers={"apikey": SERVICE_KEY, "Authorization": f"Bearer {token}"}
        )

    def row(self, bucket: str, name: str) -> dict[str, Any] | None:
        """The object's row, read as superuser."""
        with psycopg.connect(self.dsn, row_factory=psycopg.rows.dict_row) as conn:
            return conn.execute(
                "select * from storage.objects where bucket_id = %s and name = %s", (bucket, name)
            ).fetchone()

    def files(self) -> list[str]:
        """Every file under the storage root (temporary uploads included), relative to it."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def set_bucket_limit(self, bucket: str, limit: int) -> None:
        """Change a bucket's file_size_limit, as an operator (or `supabase seed buckets`) would."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("update storage.buckets set file_size_limit = %s where id = %s", (limit, bucket))


@pytest.fixture
def storage_server(db_dsn: str, tmp_path: Path) -> Iterator[StorageServer]:
    """The `/storage/v1` router in a Litestar app, served on 127.0.0.1 over a fresh database."""
    root = tmp_path / "objects"
    pool = create_pool(db_dsn, Settings(db_pool_min=1, db_pool_max=4, db_connect_timeout=10).pool_limits)
    app = Litestar(
        route_handlers=[storage_router(Database(pool), SECRET, root, verify_access_token)], logging_config=None
    )
    wrapper = _OpenPoolOnFirstRequest(app, pool)
    with serve(wrapper) as base_url:
        try:
            yield StorageServer(base_url, root, db_dsn)
        finally:
            wrapper.close_pool()


@pytest.fixture
def users(db_dsn: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Two signed-up users, A and B."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        return create_user(conn), create_user(conn)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client for requests the stock client cannot make (tampered tokens, raw bodies)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0), trust_env=False) as client:
        yield client
