"""A unit of database work queues for a connection while other units keep getting answers (the database
is busy, not down), and past the pool's `busy_wait` is answered ServerBusy (a 429), never
DatabaseUnavailable (a 503)."""

from __future__ import annotations

import asyncio
from collections import Counter

from backend.db.pool import create_pool
from backend.db.units import database_work
from backend.errors import DatabaseUnavailable, ServerBusy
from backend.settings import Settings

# One connection; a round of waiting is 0.2 s, and waiting goes on while others are answered for
# 5 x 0.2 = 1 s.
SETTINGS = Settings(db_pool_min=1, db_pool_max=1, db_connect_timeout=0.2, db_timeout=0.2)


async def test_a_busy_pool_queues_then_answers_server_busy_never_unavailable(db_dsn: str) -> None:
    pool = create_pool(db_dsn, SETTINGS.pool_limits)
    assert pool.busy_wait == 1.0
    await pool.open(wait=True)

    async def unit() -> str:
        try:
            async with database_work(pool) as conn:
                await conn.execute("select 1")
                await asyncio.sleep(0.1)  # holds the one connection a while, as a slower request would
        except ServerBusy:
            return "busy"
        except DatabaseUnavailable:
            return "unavailable"
        return "served"

    try:
        # 30 units of 0.1 s on one connection: the first ten or so are served within the second they may
        # wait, well past one 0.2 s round; the rest are told the server is busy.
        outcomes = Counter(await asyncio.gather(*(unit() for _ in range(30))))
    finally:
        await pool.close()
    assert outcomes["unavailable"] == 0, outcomes
    assert outcomes["served"] >= 5, outcomes
    assert outcomes["busy"] >= 5, outcomes
