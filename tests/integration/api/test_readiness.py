"""`/readyz`: the database and Storage as the probe finds them. Storage that is refused or silent makes
the answer `degraded` within the probe's bound, still a 200 (the database answers, and every instance shares
Storage); it is `ready` again once Storage answers. Storage is asked at most once a second however often
the probe is polled; the database on every call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar.testing import AsyncTestClient

from backend.http.routes.health import STORAGE_FRESH_FOR, storage_readiness
from backend.outages import STORAGE
from backend.storage.client import ObjectStorage, SupabaseObjectStorage

READY = {"status": "ready", "database": "up", "storage": "up"}


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountedStorage:
    """The app's Storage, counting the probes made of it."""

    def __init__(self, storage: ObjectStorage) -> None:
        self.storage = storage
        self.lookups = 0

    async def ping(self) -> None:
        self.lookups += 1
        await self.storage.ping()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


async def test_storage_out_of_reach_makes_readiness_degraded_not_down(
    client: AsyncTestClient,  # type: ignore[type-arg]
    unreachable_storage: str,
) -> None:
    state, clock = client.app.state, Clock()
    state.storage_probe = probe = storage_readiness(state.storage, clock)
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, READY)

    reachable = probe.storage
    async with SupabaseObjectStorage(unreachable_storage, "service-key") as out_of_reach:
        probe.storage = out_of_reach
        clock.now += STORAGE_FRESH_FOR
        try:
            started = time.monotonic()
            degraded = await client.get("/readyz")
            assert time.monotonic() - started < 3
        finally:
            probe.storage = reachable
    assert degraded.status_code == 200
    assert degraded.json() == {"status": "degraded", "database": "up", "storage": "unavailable"}
    assert STORAGE.down

    clock.now += STORAGE_FRESH_FOR
    again = await client.get("/readyz")
    assert (again.status_code, again.json()) == (200, READY)
    assert not STORAGE.down


async def test_storage_is_asked_once_a_second_however_often_readiness_is_polled(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    state, clock = client.app.state, Clock()
    state.storage = counted = CountedStorage(state.storage)
    state.storage_probe = storage_readiness(counted, clock)

    at_once = await asyncio.gather(*(client.get("/readyz") for _ in range(5)))  # they wait for the first's answer
    one_by_one = [await client.get("/readyz") for _ in range(5)]
    assert [(answer.status_code, answer.json()) for answer in [*at_once, *one_by_one]] == [(200, READY)] * 10
    assert counted.lookups == 1

    clock.now += STORAGE_FRESH_FOR
    later = await client.get("/readyz")
    assert (later.status_code, later.json()) == (200, READY)
    assert counted.lookups == 2
