"""A unit of database work queues for a connection while other units keep getting answers (the database
is busy, not down), and past the pool's `busy_wait` is answered ServerBusy (a 429), never
DatabaseUnavailable (a 503)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import psycopg

from backend.db.pool import create_pool
from backend.db.shares import owned_by
from backend.db.units import Database
from backend.errors import DatabaseUnavailable, ServerBusy
from backend.settings import Settings

# One connection; a round of waiting is 0.5 s, and waiting goes on while others are answered for
# 5 x 0.5 = 2.5 s. Answers come every 0.1 s or so: a round leaves 0.4 s for the machine to stall (a loaded
# CI machine did stall past the 0.1 s that rounds of 0.2 s left, and every waiter was told "unavailable").
SETTINGS = Settings(db_pool_min=1, db_pool_max=1, db_connect_timeout=0.5, db_timeout=0.5)


async def test_a_busy_pool_queues_then_answers_server_busy_never_unavailable(db_dsn: str) -> None:
    pool = create_pool(db_dsn, SETTINGS.pool_limits)
    assert pool.busy_wait == 2.5
    await pool.open(wait=True)

    async def unit() -> str:
        try:
            async with Database(pool).work() as conn:
                await conn.execute("select 1")
                await asyncio.sleep(0.1)  # holds the one connection a while, as a slower request would
        except ServerBusy:
            return "busy"
        except DatabaseUnavailable:
            return "unavailable"
        return "served"

    try:
        # 40 units of 0.1 s on one connection: the first twenty or so are served within the 2.5 s they may
        # wait, well past one 0.5 s round; the rest are told the server is busy.
        outcomes = Counter(await asyncio.gather(*(unit() for _ in range(40))))
    finally:
        await pool.close()
    assert outcomes["unavailable"] == 0, outcomes
    assert outcomes["served"] >= 5, outcomes
    assert outcomes["busy"] >= 5, outcomes


async def test_units_waiting_through_a_stall_of_the_process_are_served_not_told_unavailable(db_dsn: str) -> None:
    """A loaded machine that stops running the process for longer than a round of waiting: the waits end
    late, and the answers that came meanwhile are still unread. That is not a database answering nobody."""
    pool = create_pool(db_dsn, SETTINGS.pool_limits)
    await pool.open(wait=True)
    first_answer = asyncio.Event()

    async def unit() -> str:
        try:
            async with Database(pool).work() as conn:
                await conn.execute("select 1")
                first_answer.set()
                await asyncio.sleep(0.1)
        except ServerBusy:
            return "busy"
        except DatabaseUnavailable:
            return "unavailable"
        return "served"

    async def stall() -> None:
        await first_answer.wait()
        # The stall itself: the event loop runs nothing for longer than a 0.5 s round.
        time.sleep(0.8)  # noqa: ASYNC251

    try:
        _, *served = await asyncio.gather(stall(), *(unit() for _ in range(8)))
    finally:
        await pool.close()
    outcomes = Counter(served)
    # 8 units of 0.1 s after a 0.8 s stall end well within the 2.5 s busy wait.
    assert outcomes == Counter(served=8), outcomes


async def test_a_wait_behind_the_users_own_units_is_no_sign_of_an_outage(db_dsn: str) -> None:
    """A user's units past their share wait for the user's own: when those all wait on a lock of theirs held in
    another process, nobody in this one hears from the database for a round, and that is the user being busy, not
    the database being down (answered 429 past the busy wait, never 503)."""
    settings = Settings(db_pool_min=1, db_pool_max=2, db_connect_timeout=0.3, db_timeout=5)
    pool = create_pool(db_dsn, settings.pool_limits, by_user=True)
    assert pool.shares is not None
    assert pool.shares.share == 1
    await pool.open(wait=True)
    db = Database(pool)

    async def unit() -> str:
        with owned_by("flood"):
            try:
                async with db.work() as conn:
                    await conn.execute("select pg_advisory_lock(4242)")
                    await conn.execute("select pg_advisory_unlock(4242)")
            except ServerBusy:
                return "busy"
            except DatabaseUnavailable:
                return "unavailable"
        return "served"

    try:
        with psycopg.connect(db_dsn, autocommit=True) as holder:
            holder.execute("select pg_advisory_lock(4242)")  # as another process's unit of the user holds it
            first, second = asyncio.create_task(unit()), asyncio.create_task(unit())
            deadline = time.monotonic() + 5
            while not holder.execute("select exists (select from pg_locks where not granted)").fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the first unit never reached the lock"
                await asyncio.sleep(0.01)
            # The scenario itself: longer than three rounds (0.3 s each) with the share's one connection waiting
            # on the lock and the second unit behind it, no answer anywhere in this process.
            await asyncio.sleep(1.0)
            assert not second.done()
            holder.execute("select pg_advisory_unlock(4242)")
            outcomes = [await first, await second]
    finally:
        await pool.close()
    assert outcomes == ["served", "served"]
