"""Fixtures for integration tests: an async service pool on this test's database, as a worker holds one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from backend.db.pool import Pool, create_pool
from backend.settings import settings_from_env


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[Pool]:
    service_pool = create_pool(db_dsn, settings_from_env({}).pool_limits)
    await service_pool.open(wait=True)
    try:
        yield service_pool
    finally:
        await service_pool.close()
