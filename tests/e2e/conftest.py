"""Apps that run their queue consumers in-process, as `voicegate up` does, on this test's database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient
from playwright.async_api import Playwright, async_playwright

from backend.app import create_app
from backend.settings import settings_from_env
from devkit.up import DATA_TEMPLATE, Running, make_data_template
from fakes import ElevenLabsFake, serve
from queue_consumers.worker import consume_in_app
from standins.dev_tokens import mint_service_key
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.conftest import server_dir
from tests.integration.api.conftest import JWT_SECRET, User, make_user, sql  # noqa: F401 - fixtures

#: Fast timings so the lifecycle finishes in seconds; the logic is the production one.
FAST = {
    "VOICEGATE_QUEUE_POLL_INTERVAL": "0.2",
    "VOICEGATE_LEASE_SECONDS": "5",
    "VOICEGATE_RETRY_BASE_SECONDS": "0.2",
    "VOICEGATE_MAINTENANCE_INTERVAL": "3600",
}

AppFactory = Callable[..., AsyncTestClient]  # type: ignore[type-arg]


@pytest.fixture(scope="session", autouse=True)
def _data_template() -> Iterator[None]:
    """One data directory made and migrated as a first `voicegate up` makes it, which each `voicegate up` of this
    worker starts from (a copy) unless its test is about a first start: initdb and the migrations once, not once
    per start."""
    with server_dir("template") as root:
        DATA_TEMPLATE.path = make_data_template(root)
        try:
            yield
        finally:
            DATA_TEMPLATE.path = None


@pytest.fixture(scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    """Playwright for the browser tests of a module (each test launches its own Chromium: tests/e2e/browser.py)."""
    async with async_playwright() as driver:
        yield driver


@pytest.fixture
async def worker_client(db_dsn: str, tmp_path: Path) -> AsyncIterator[Callable[..., AsyncTestClient]]:  # type: ignore[type-arg]
    """Open an app with in-process consumers: `await open_app(CONSUMER_MODE="http")`; with
    `consumers=False` the app runs none, for tests that drive the lifecycle by hand."""
    opened: list[AsyncTestClient] = []  # type: ignore[type-arg]

    async def open_app(*, consumers: bool = True, **env: str) -> AsyncTestClient:  # type: ignore[type-arg]
        settings = with_auth_keys(
            settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), **FAST, **env}), {"SUPABASE_JWT_SECRET": JWT_SECRET}
        )
        client = AsyncTestClient(
            app=create_app(settings, db_dsn, consumers=consume_in_app if consumers else None, embedded=EMBEDDED)
        )
        await client.__aenter__()
        opened.append(client)
        return client

    yield open_app
    for client in opened:
        await client.__aexit__(None, None, None)


@contextlib.contextmanager
def served_app(dsn: str, data_dir: Path, *, consumers: bool = False, **env: str) -> Iterator[str]:
    """The app on a real port (its own thread and loop), for tests that send several requests at once:
    without consumers, to drive the lifecycle by hand through the internal route, or with them."""
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir), **FAST, **env}), {"SUPABASE_JWT_SECRET": JWT_SECRET}
    )
    with serve(
        create_app(settings, dsn, consumers=consume_in_app if consumers else None, embedded=EMBEDDED), lifespan="on"
    ) as url:
        yield url


async def process_by_hand(client: httpx.AsyncClient, attempt_id: str, reflection_id: str, worker: str) -> str:
    """One `POST /internal/.../process` as worker `worker`; the attempt's status it reports."""
    response = await client.post(
        f"/internal/reflections/{reflection_id}/voice-clone-attempts/{attempt_id}/process",
        headers={"Authorization": f"Bearer {mint_service_key(JWT_SECRET)}", "X-Voicegate-Worker": worker},
    )
    response.raise_for_status()
    status: str = response.json()["status"]
    return status


def elevenlabs_env(provider: ElevenLabsFake, url: str) -> dict[str, str]:
    """Settings that make ElevenLabs, served by the fake at `url`, the default provider."""
    return {"VOICE_PROVIDER": "elevenlabs", "ELEVENLABS_API_KEY": provider.api_key, "ELEVENLABS_BASE_URL": url}


async def until_create_sent(provider: ElevenLabsFake, within: float = 20) -> None:
    """Wait until a voice create has reached the ElevenLabs fake (the worker is inside the call)."""
    deadline = time.monotonic() + within
    while not provider.requests_to("POST", "/v1/voices/add"):
        assert time.monotonic() < deadline, "no create reached the provider"
        await asyncio.sleep(0.02)


@pytest.fixture
def audio_files(up: Running) -> Path:
    """Where a browser test's audio files go: the module's `up` server's own temporary tree."""
    folder = up.pg.data_dir.parent.parent / "audio"
    folder.mkdir(exist_ok=True)
    return folder
