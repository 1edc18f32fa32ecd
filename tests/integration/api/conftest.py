"""An app per test, on its own cloned database, with HS256 tokens minted for real users."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.settings import settings_from_env
from devkit.db import Conn, create_user
from standins.dev_tokens import mint_user_token
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED

JWT_SECRET = "test-jwt-secret-" + "x" * 40
#: `open_app`: opens an app with settings from its keyword arguments (environment variables) over the defaults.
OpenApp = Callable[..., Any]


@dataclass(frozen=True)
class User:
    """A signed-up user and their access token."""

    id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def sql(db_dsn: str) -> Iterator[Conn]:
    """A superuser connection to the app's database, for seeding what workers would do."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def client(db_dsn: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path)}), {"SUPABASE_JWT_SECRET": JWT_SECRET}
    )
    async with AsyncTestClient(app=create_app(settings, db_dsn, embedded=EMBEDDED)) as test_client:
        yield test_client


@pytest.fixture
async def open_app(db_dsn: str, tmp_path: Path) -> AsyncIterator[OpenApp]:
    """Open an app (no queue consumers) on this test's database, with `env` over the defaults."""
    clients: list[AsyncTestClient] = []  # type: ignore[type-arg]

    async def open_one(**env: str) -> AsyncTestClient:  # type: ignore[type-arg]
        settings = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path / str(len(clients))), **env})
        client = AsyncTestClient(
            app=create_app(with_auth_keys(settings, {"SUPABASE_JWT_SECRET": JWT_SECRET}), db_dsn, embedded=EMBEDDED)
        )
        clients.append(await client.__aenter__())
        return client

    yield open_one
    for client in reversed(clients):
        await client.__aexit__(None, None, None)


@pytest.fixture
def make_user(sql: Conn) -> object:
    def make() -> User:
        user_id = create_user(sql)
        return User(user_id, mint_user_token(JWT_SECRET, user_id))

    return make
