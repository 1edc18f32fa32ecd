"""What `backend.db.waiting` relies on of psycopg's undocumented `AsyncConnection.wait`, for the locked
psycopg: its signature, and that every exchange with the server the units of work make (a statement, a
pipeline, a transaction block, a cursor's fetch, `COMMIT`) goes through it while the server is waited
for. A psycopg that changes either fails here, before the units' deadline silently stops covering a wait."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg.rows import dict_row

from backend.db.deadline import TimedWaits
from backend.db.waiting import ObservedWaits

#: Longest wait for the statement to reach the server.
WAIT_SECONDS = 30


class CountedWaits(ObservedWaits):
    """Counts the waits on the server that pass through the hook."""

    waits = 0

    def wait_begins(self) -> None:
        self.waits += 1


class SignalledWaits(TimedWaits):
    """Tells when a wait on the server has begun."""

    began: asyncio.Event

    def wait_begins(self) -> None:
        super().wait_begins()
        self.began.set()


@pytest.fixture
async def counted(db_dsn: str) -> AsyncIterator[CountedWaits]:
    conn = await CountedWaits.connect(db_dsn, autocommit=True, row_factory=dict_row)
    try:
        yield conn
    finally:
        await conn.close()


def test_the_private_wait_keeps_the_signature_the_hook_overrides() -> None:
    assert "wait" in vars(psycopg.AsyncConnection), "psycopg no longer defines AsyncConnection.wait"
    assert inspect.iscoroutinefunction(psycopg.AsyncConnection.wait)
    assert list(inspect.signature(psycopg.AsyncConnection.wait).parameters) == ["self", "gen", "interval", "timeout"]


async def test_every_exchange_the_units_make_goes_through_the_wait(counted: CountedWaits) -> None:
    async def waits_of(exchange: str) -> int:
        before = counted.waits
        if exchange == "statement":
            await counted.execute("select 1")
        elif exchange == "pipeline":
            async with counted.pipeline():
                await counted.execute("select 1")
                await counted.execute("select 2")
        elif exchange == "transaction block":
            async with counted.transaction():
                pass
        elif exchange == "cursor":
            async with counted.cursor() as cur:
                await cur.execute("select generate_series(1, 3)")
                await cur.fetchall()
        else:
            await counted.execute("begin")
            await counted.execute("commit")
        return counted.waits - before

    for exchange in ("statement", "pipeline", "transaction block", "cursor", "commit"):
        assert await waits_of(exchange) > 0, f"{exchange}: psycopg waited on the server without the hook"


async def test_the_wait_spans_the_time_the_server_takes(db_dsn: str) -> None:
    holder = await psycopg.AsyncConnection.connect(db_dsn, autocommit=True)
    conn = await SignalledWaits.connect(db_dsn, autocommit=True)
    conn.began = asyncio.Event()
    try:
        await holder.execute("select pg_advisory_lock(29)")
        assert conn.waiting_since is None
        query = asyncio.create_task(conn.execute("select pg_advisory_lock(29)"))
        await asyncio.wait_for(conn.began.wait(), WAIT_SECONDS)
        assert conn.waiting_since is not None
        assert not query.done()  # the server holds the statement until the lock is let go
        await holder.execute("select pg_advisory_unlock(29)")
        await query
        assert conn.waiting_since is None
    finally:
        await conn.close()
        await holder.close()
