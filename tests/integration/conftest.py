"""Fixtures for integration tests: this test's database behind an async pool, as the API holds one; and
the worker context a queue consumer runs with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from backend.compose.parts import build_worker_context
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db.pool import create_pool
from backend.db.units import Database
from backend.provenance import ProvenanceSigner
from backend.settings import settings_from_env
from standins.storage.in_process import standalone_storage as local_storage


@pytest.fixture
async def database(db_dsn: str) -> AsyncIterator[Database]:
    pool = create_pool(db_dsn, settings_from_env({}).pool_limits)
    await pool.open(wait=True)
    try:
        yield Database(pool)
    finally:
        await pool.close()


@asynccontextmanager
async def open_lifecycle(
    cpu: CpuExecutor, db_dsn: str, data_dir: Path, *, http: httpx.AsyncClient | None = None, **env: str
) -> AsyncIterator[WorkerContext]:
    """A consumer's context on this test's database, with the Storage stand-in under ``data_dir`` and the
    settings ``env`` names (e.g. a provider fake's base URL); its providers send with ``http`` (a default client when
    None), which the caller closes."""
    settings = settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir), **env})
    pool = create_pool(db_dsn, settings.pool_limits)
    await pool.open(wait=True)
    async with local_storage(db_dsn, data_dir / "storage") as storage, httpx.AsyncClient() as default:
        http = http or default
        lifecycle = build_worker_context(
            settings, Database(pool), storage, http, ProvenanceSigner.from_settings(settings), cpu=cpu
        )
        yield lifecycle
        await lifecycle.aclose()
    await pool.close()
