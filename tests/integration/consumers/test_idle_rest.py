"""An idle consumer that hears its queue's notifications rests: it reads again only at its idle interval, unless a
message is due sooner. What no notification announces still arrives when due: a message sent with a delay, and one
whose visibility timeout ran out in another consumer's hands, and one another consumer failed (its backoff, sooner than
the visibility it read). A message visible and left unread (another user's turn) is read again at the poll interval,
not in a loop."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from backend import queues
from backend.db.connection import Connection
from backend.db.pool import create_pool
from backend.db.units import Database
from backend.queues import Message, Reader
from backend.settings import settings_from_env
from devkit.db import Conn, one
from queue_consumers.runtime import ConsumerConfig, QueueConsumer

QUEUE = "voice_synthesis"  # any queue with notify-on-insert; nothing else consumes it in these tests
#: Longer than any of these tests: a message that arrives sooner came by a notification or by its due time.
NEVER = 60.0


class Reads:
    """pgmq's read, timed: when each read was made, and what it took."""

    def __init__(self, *, take: bool = True) -> None:
        self.at: list[float] = []
        self.take = take
        self.changed = asyncio.Event()

    async def __call__(self, conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        self.at.append(time.monotonic())
        self.changed.set()
        return await queues.read(conn, QUEUE, vt, qty) if self.take else []

    async def until(self, count: int, within: float) -> None:
        """Until `count` reads were made (at most `within` seconds)."""
        async with asyncio.timeout(within):
            while len(self.at) < count:
                self.changed.clear()
                await self.changed.wait()


def send(db: Conn, body: dict[str, Any], delay: int = 0) -> int:
    msg_id: int = one(db, "select pgmq.send(%s, %s::jsonb, %s) as id", (QUEUE, json.dumps(body), delay))["id"]
    return msg_id


def archived(db: Conn) -> int:
    return int(one(db, f"select count(*) as n from pgmq.a_{QUEUE}")["n"])


@asynccontextmanager
async def running(
    database: Database, db_dsn: str, reader: Reader, handled: asyncio.Queue[float], **config: Any
) -> AsyncIterator[QueueConsumer]:
    async def handle(_: Message) -> None:
        handled.put_nowait(time.monotonic())

    settings = {"queue": QUEUE, "poll_interval": NEVER, "idle_poll_interval": NEVER, **config}
    worker = QueueConsumer(database, ConsumerConfig(**settings), handle, listen_dsn=db_dsn, reader=reader)
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run(stopping))
    try:
        await asyncio.wait_for(worker.listening.wait(), 10)
        yield worker
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)


async def test_an_idle_consumer_reads_at_its_idle_interval_not_its_poll_interval(
    database: Database, db_dsn: str
) -> None:
    reads = Reads()
    async with running(database, db_dsn, reads, asyncio.Queue(), poll_interval=0.05, idle_poll_interval=1.0):
        # Until the LISTEN connection is up the consumer polls (on a loaded machine, several times), and it reads once
        # more as the connection comes up: the reads after that one are the resting consumer's.
        heard = len(reads.at) + 1
        await reads.until(heard + 3, within=20)
    resting = reads.at[heard:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(resting)]
    assert min(gaps) >= 0.95, gaps  # 0.05 s apart: polling


async def test_a_message_sent_with_a_delay_arrives_when_due(database: Database, db_dsn: str, db: Conn) -> None:
    handled: asyncio.Queue[float] = asyncio.Queue()
    async with running(database, db_dsn, Reads(), handled):
        sent = time.monotonic()
        send(db, {"n": 1}, delay=1)
        arrived = await asyncio.wait_for(handled.get(), 15)
    # Its notification came as it was sent and found nothing visible; only its due time can have delivered it.
    assert 0.95 <= arrived - sent < 15
    assert archived(db) == 1


async def test_a_message_whose_visibility_ran_out_elsewhere_arrives_when_due(
    database: Database, db_dsn: str, db: Conn
) -> None:
    send(db, {"n": 1})
    # Another consumer read it for a second and died with it.
    taken = one(db, "select count(*) as n from pgmq.read(%s, 1, 1)", (QUEUE,))["n"]
    assert taken == 1
    handled: asyncio.Queue[float] = asyncio.Queue()
    started = time.monotonic()
    async with running(database, db_dsn, Reads(), handled):
        arrived = await asyncio.wait_for(handled.get(), 15)
    assert arrived - started < 15
    assert archived(db) == 1


async def test_a_visible_message_the_read_left_is_read_again_at_the_poll_interval(
    database: Database, db_dsn: str, db: Conn
) -> None:
    send(db, {"n": 1})
    # A read that takes nothing although a message is visible: one in turn for another user, say.
    reads = Reads(take=False)
    async with running(database, db_dsn, reads, asyncio.Queue(), poll_interval=0.2):
        await reads.until(5, within=20)
    gaps = [later - earlier for earlier, later in itertools.pairwise(reads.at[1:])]
    # Neither resting for the idle interval (60 s here) nor reading in a loop.
    assert min(gaps) >= 0.19, gaps


class Resting(QueueConsumer):
    """A consumer that says when it has worked out how long to rest."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rested = asyncio.Event()

    async def _rest(self) -> float:
        seconds = await super()._rest()
        self.rested.set()
        return seconds


async def test_a_message_another_consumer_failed_arrives_after_its_backoff_not_its_old_visibility(
    database: Database, db_dsn: str, db: Conn
) -> None:
    """B reads M (visible again in 30 s); A, idle, rests until then; B's handler fails M (visible again in 1 s) and
    B stops, as a worker does in a deploy. Nothing is inserted: only B telling the queue wakes A before the 30 s."""
    pool = create_pool(db_dsn, settings_from_env({}).pool_limits)
    await pool.open(wait=True)
    taken, release = asyncio.Event(), asyncio.Event()

    async def fail(_: Message) -> None:
        taken.set()
        await asyncio.wait_for(release.wait(), 30)
        raise RuntimeError("the provider said no")

    handled: asyncio.Queue[float] = asyncio.Queue()

    async def handle(_: Message) -> None:
        handled.put_nowait(time.monotonic())

    settings = {"queue": QUEUE, "visibility_seconds": 30, "backoff_base": 1.0, "backoff_max": 1.0}
    b = QueueConsumer(Database(pool), ConsumerConfig(**settings), fail, listen_dsn=db_dsn)
    a = Resting(database, ConsumerConfig(**settings, idle_poll_interval=NEVER), handle, listen_dsn=db_dsn)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_b = asyncio.create_task(b.run(stop_b))
    task_a: asyncio.Task[None] | None = None
    try:
        send(db, {"n": 1})
        await asyncio.wait_for(taken.wait(), 10)
        task_a = asyncio.create_task(a.run(stop_a))
        await asyncio.wait_for(a.rested.wait(), 10)
        release.set()
        failed_at = time.monotonic()
        deadline = time.monotonic() + 10
        while one(db, f"select vt > now() + interval '5 seconds' as later from pgmq.q_{QUEUE}")["later"]:
            assert time.monotonic() < deadline, "B's backoff was never committed"
            await asyncio.sleep(0.02)
        stop_b.set()
        await asyncio.wait_for(task_b, 10)
        arrived = await asyncio.wait_for(handled.get(), 40)
        assert arrived - failed_at < 5, arrived - failed_at
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.wait_for(task_b, 10)
        if task_a is not None:
            await asyncio.wait_for(task_a, 10)
        await pool.close()
