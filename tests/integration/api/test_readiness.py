"""`/readyz`: the database and Storage as the probe finds them. Storage that is refused or silent makes
the answer `degraded` within the probe's bound, still a 200 (the database answers, and every instance shares
Storage); it is `ready` again once Storage answers."""

from __future__ import annotations

import time

from litestar.testing import AsyncTestClient

from backend.outages import STORAGE
from backend.storage.client import SupabaseObjectStorage

READY = {"status": "ready", "database": "up", "storage": "up"}


async def test_storage_out_of_reach_makes_readiness_degraded_not_down(
    client: AsyncTestClient,  # type: ignore[type-arg]
    unreachable_storage: str,
) -> None:
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, READY)

    state = client.app.state
    reachable = state.storage
    async with SupabaseObjectStorage(unreachable_storage, "service-key") as out_of_reach:
        state.storage = out_of_reach
        try:
            started = time.monotonic()
            degraded = await client.get("/readyz")
            assert time.monotonic() - started < 3
        finally:
            state.storage = reachable
    assert degraded.status_code == 200
    assert degraded.json() == {"status": "degraded", "database": "up", "storage": "unavailable"}
    assert STORAGE.down

    again = await client.get("/readyz")
    assert (again.status_code, again.json()) == (200, READY)
    assert not STORAGE.down
