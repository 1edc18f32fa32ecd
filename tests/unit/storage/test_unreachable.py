"""Storage that cannot be reached, refused or silent, is `StorageUnavailable` and an outage of Storage,
however long the server would keep a request waiting: a probe answers within its own bound."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from backend.errors import StorageUnavailable
from backend.outages import STORAGE
from backend.storage.client import SupabaseObjectStorage, answers


@pytest.fixture(autouse=True)
def storage_outage_ends() -> Iterator[None]:
    """The process-wide Storage outage these tests start is over when they end."""
    yield
    STORAGE.recovered()


async def test_a_call_is_storage_unavailable_by_its_timeout(unreachable_storage: str) -> None:
    async with SupabaseObjectStorage(unreachable_storage, "service-key", timeout=0.5) as storage:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await storage.download("voice-renders", "a/b.wav")
        assert time.monotonic() - started < 3
    assert STORAGE.down


async def test_a_probe_says_no_within_its_bound_whatever_the_clients_timeout(unreachable_storage: str) -> None:
    async with SupabaseObjectStorage(unreachable_storage, "service-key") as storage:  # 30 s per request
        started = time.monotonic()
        assert not await answers(storage, 0.5)
        assert time.monotonic() - started < 3
    assert STORAGE.down
