"""`backend.queues.notified`, what a consumer's listener waits on: woken by a notification and by nothing else."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import psycopg
import pytest

from backend.queues import notified
from devkit.db import Conn

#: How long an idle listener is watched, and the most CPU its thread may spend meanwhile: measured, about 1 ms
#: (starting and ending the wait) against 9-10 ms for psycopg's own `notifies()`, which wakes ten times a second.
IDLE_SECONDS, IDLE_CPU_SECONDS = 2.0, 0.003


async def listening(dsn: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    """A connection listening on test_channel."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await conn.execute("LISTEN test_channel")
    return conn


async def test_a_notification_wakes_it_and_all_that_arrived_are_taken_at_once(db_dsn: str, db: Conn) -> None:
    async with await listening(db_dsn) as conn:
        waiting = asyncio.create_task(notified(conn))
        db.execute("select pg_notify('test_channel', 'one')")
        await asyncio.wait_for(waiting, 5)
        with db.transaction():  # delivered together, as a burst of inserts' would be
            db.execute("select pg_notify('test_channel', 'two')")
            db.execute("select pg_notify('test_channel', 'three')")
        await asyncio.wait_for(notified(conn), 5)
        # Both were taken by the call before: the next waits for another.
        later = asyncio.create_task(notified(conn))
        done, _ = await asyncio.wait({later}, timeout=0.3)
        assert not done
        db.execute("select pg_notify('test_channel', 'four')")
        await asyncio.wait_for(later, 5)


async def test_a_lost_connection_raises_at_once(db_dsn: str, db: Conn) -> None:
    async with await listening(db_dsn) as conn:
        waiting = asyncio.create_task(notified(conn))
        db.execute("select pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(waiting, 5)


def idle_cpu(dsn: str, wait: Callable[[psycopg.AsyncConnection[tuple[object, ...]]], Awaitable[object]]) -> float:
    """The CPU seconds a thread of its own spends while `wait` waits IDLE_SECONDS for a notification that never
    comes."""
    spent: list[float] = []

    async def watch() -> None:
        async with await listening(dsn) as conn:
            started = time.thread_time()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(wait(conn), IDLE_SECONDS)
            spent.append(time.thread_time() - started)

    thread = threading.Thread(target=asyncio.run, args=(watch(),))
    thread.start()
    thread.join(IDLE_SECONDS + 30)
    assert not thread.is_alive(), "the watch did not finish"
    assert spent
    return spent[0]


async def first_of_psycopgs(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    async for _ in conn.notifies():
        return


def test_an_idle_listener_costs_next_to_no_cpu(db_dsn: str) -> None:
    ours = idle_cpu(db_dsn, notified)
    # The same watch sees psycopg's own wait, so it could see ours spend.
    theirs = idle_cpu(db_dsn, first_of_psycopgs)
    assert ours < IDLE_CPU_SECONDS, f"{ours * 1000:.2f} ms of CPU in {IDLE_SECONDS} s idle"
    assert theirs > ours, (theirs, ours)
