"""The pgmq queues (docs/concepts.md#what-runs): their names, the messages they carry, and sending one.

This is the one place a queue is named in Python, and the one that runs pgmq's SQL: `send`, and the reads,
archives, visibility and recorded errors of `queue_consumers.runtime`. Each runs on the caller's connection,
so a domain write and the message it implies commit together or not at all. The migrations create the queues,
and triggers send the messages whose cause is a row change (a new attempt, a job woken by its attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import psycopg
from psycopg import AsyncConnection, sql
from psycopg.pq import ConnStatus

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.errors import BacklogFull

_Q = load_queries(Path(__file__).with_suffix(".sql"))

CLONE: Final = "voice_clone_process"
"""`VOICE_CLONE_PROCESS {attemptId, reflectionId, version}`: drive a clone attempt (sent by SQL on insert)."""
PREVIEW: Final = "voice_preview"
"""`VOICE_PREVIEW {attemptId, version}`: speak the preview of a ready, synced attempt."""
SAMPLE: Final = "voice_sample_process"
"""`{sampleId}`: check and clean an uploaded sample (`backend.samples.step`)."""
SYNTHESIS: Final = "voice_synthesis"
"""`{jobId}`: speak a synthesis job's text."""
WEBHOOK: Final = "webhook_delivery"
"""`{webhookId, endpointId, type, timestamp, data}`: deliver one event to one endpoint (sent by SQL triggers;
`endpointId` null is the project's endpoint). `webhookId` stays the same through retries and replays."""
ERASURE: Final = "user_erasure"
"""`{erasureId}`: erase what an erased user left outside Postgres, and what the cascade leaves (sent by the trigger
that deletes the user)."""
DEAD_LETTER: Final = "voice_dead_letter"
"""Messages delivered too often: `{sourceQueue, sourceMsgId, readCount, message, error, deadAt}`."""

#: The queues work is consumed from (every queue but the dead letters).
WORK_QUEUES: Final = (CLONE, PREVIEW, SAMPLE, SYNTHESIS, WEBHOOK, ERASURE)
ALL: Final = (*WORK_QUEUES, DEAD_LETTER)


class Message(msgspec.Struct, frozen=True):
    """One delivery of a queue message."""

    msg_id: int
    read_ct: int
    enqueued_at: datetime
    vt: datetime
    message: dict[str, Any]
    #: When this delivery was read (`time.monotonic()`): it may wait a moment unstarted (`read_ahead_seconds`).
    read_at: float
    #: What a queue's own reader did with the message as it read it (the clone queue: the attempt it leased).
    leased: dict[str, Any] | None = None
    #: Whose work the message is, as a reader that takes messages in turn by owner says (`Turns`).
    owner: str | None = None

    def id_of(self, field: str) -> uuid.UUID:
        """The id the message names under `field` (`attemptId`, `jobId`, ...)."""
        return uuid.UUID(str(self.message[field]))


class Turns:
    """How many of a consumer's slots each owner's messages hold, for a reader that takes the messages in turn by
    owner: the SQL ranks each owner's visible messages (oldest first) after those the owner holds, takes the lowest
    ranks first, and none past the owner's share. So one owner's backlog never stands before another owner's first
    message, and holds at most `share` of the slots: the rest (a quarter, at least one) wait for other owners, who
    never queue behind it. A message counts from when its handler starts (`holding`) to when it ends."""

    def __init__(self, slots: int) -> None:
        #: The most slots one owner's messages hold at once.
        self.share = max(1, slots - max(1, slots // 4))
        self._held: Counter[str] = Counter()

    @contextlib.contextmanager
    def holding(self, owner: str | None) -> Iterator[None]:
        """Count the block as one of `owner`'s messages in hand (no owner: nobody's)."""
        if owner is None:
            yield
            return
        self._held[owner] += 1
        try:
            yield
        finally:
            self._held[owner] -= 1
            if self._held[owner] <= 0:
                del self._held[owner]

    def held(self, owner: str) -> int:
        """How many of `owner`'s messages are in hand."""
        return self._held[owner]

    def params(self) -> dict[str, Any]:
        """The reader's parameters: what each owner holds, and the share each may hold (no owner a lower one)."""
        return {"held": json.dumps(self._held), "share": self.share, "caps": "{}"}


#: Works one delivery: None when the message is done, or when to look at it again.
Handler = Callable[[Message], Awaitable[datetime | None]]
#: Reads up to `qty` messages, invisible for `vt` seconds, on the caller's service transaction: rows with
#: `Message`'s fields. A queue whose reading does more than pgmq's read gives its own.
Reader = Callable[[Connection, int, int], Awaitable[list[dict[str, Any]]]]
#: Called in the dead-lettering transaction with the message, the code to fail its work with (`dead_lettered`,
#: or `storage_unavailable`) and its last error.
DeadLetterHook = Callable[[Connection, Message, str, str], Awaitable[None]]


def preview_message(attempt_id: uuid.UUID, version: int) -> dict[str, Any]:
    """The `VOICE_PREVIEW` message asking for an attempt's preview."""
    return {"type": "VOICE_PREVIEW", "attemptId": str(attempt_id), "version": version}


def sample_check_message(sample_id: uuid.UUID) -> dict[str, Any]:
    """The message asking for a sample's check."""
    return {"sampleId": str(sample_id)}


def synthesis_message(job_id: uuid.UUID) -> dict[str, Any]:
    """The message asking for a synthesis job."""
    return {"jobId": str(job_id)}


async def send(conn: Connection, queue: str, message: dict[str, Any], delay_seconds: int = 0) -> int:
    """`pgmq.send` on the caller's transaction, so the message exists exactly when the write commits."""
    row = await fetch_one(
        conn, _Q["send"], {"queue": queue, "message": json.dumps(message, default=str), "delay": delay_seconds}
    )
    msg_id: int = row["msg_id"]
    return msg_id


async def read(conn: Connection, queue: str, vt: int, qty: int) -> list[dict[str, Any]]:
    """`pgmq.read`: up to `qty` messages, each invisible for `vt` seconds (`msg_id`, `read_ct`, `enqueued_at`,
    `vt`, `message`)."""
    return await fetch_all(conn, _Q["read"], {"queue": queue, "vt": vt, "qty": qty})


async def next_due(conn: Connection, queue: str, held: set[int]) -> float | None:
    """Seconds until the queue's first message but those `held` is visible (0 or less: one is now); None when it has
    no other message."""
    row = await fetch_one(conn, _Q["next_due"], {"queue": queue, "held": sorted(held)})
    seconds = row["seconds"]
    return None if seconds is None else float(seconds)


async def set_vt(conn: Connection, queue: str, msg_id: int, vt: int) -> None:
    """Make the message invisible for `vt` seconds from now."""
    await conn.execute(_Q["set_vt"], {"queue": queue, "msg_id": msg_id, "vt": vt})


async def archive(conn: Connection, queue: str, msg_id: int) -> bool:
    """Move the message to the queue's archive; False when there was no such message (cancelled, or archived)."""
    row = await fetch_one(conn, _Q["archive"], {"queue": queue, "msg_id": msg_id})
    return bool(row["archived"])


async def archive_many(conn: Connection, queue: str, msg_ids: list[int]) -> None:
    """Move the messages to the queue's archive."""
    await conn.execute(_Q["archive_many"], {"queue": queue, "msg_ids": msg_ids})


async def hand_back(conn: Connection, queue: str, deliveries: dict[int, int], *, answer: bool) -> set[int]:
    """Make each message of `deliveries` (`msg_id` → the `read_ct` it was read with) visible at once if
    nobody has read it since and it is still invisible; the messages made visible when `answer` (else none:
    a pipeline need not wait for it)."""
    params = {"queue": queue, "msg_ids": list(deliveries), "read_cts": list(deliveries.values())}
    await tell(conn, queue)
    if not answer:
        await conn.execute(_Q["release"], params)
        return set()
    return {row["msg_id"] for row in await fetch_all(conn, _Q["release_listed"], params)}


async def tell(conn: Connection, queue: str) -> None:
    """Wake the queue's consumers at the transaction's commit, as an insert does: a message they rest until (its
    visibility) is visible sooner now, which no insert announces."""
    await conn.execute(_Q["tell"], {"queue": queue})


async def put_off(conn: Connection, queue: str, msg_id: int, read_ct: int, seconds: int) -> bool:
    """Make the message visible again in `seconds` and take back the read that delivered it (`read_ct`), so
    that this delivery counts toward no dead letter; False when somebody has read it since."""
    row = await fetch_one(
        conn, _Q["put_off"], {"queue": queue, "msg_id": msg_id, "read_ct": read_ct, "seconds": seconds}
    )
    return bool(row["put_off"])


async def record_error(conn: Connection, queue: str, msg_id: int, read_ct: int, error: str) -> None:
    """Keep the error of the message's failed delivery `read_ct` (the last one kept), for its dead letter."""
    await conn.execute(_Q["record_error"], {"queue": queue, "msg_id": msg_id, "read_ct": read_ct, "error": error})


async def take_error(conn: Connection, queue: str, msg_id: int) -> str | None:
    """The message's kept error, forgotten as it is taken."""
    row = await fetch_optional(conn, _Q["take_error"], {"queue": queue, "msg_id": msg_id})
    return None if row is None else str(row["error"])


async def dead_letter_count(conn: Connection) -> int:
    """How many messages wait in the dead-letter queue."""
    return int((await fetch_one(conn, _Q["dead_letter_count"], {}))["n"])


@dataclass(frozen=True)
class Backlog:
    """What a queue holds (messages waiting or being worked on), and how many it finished lately."""

    waiting: int
    done: int


#: The queues whose backlog admission is measured (`backlog`), and the query that measures each.
_BACKLOG_QUERIES: Final = {SAMPLE: "sample_check_backlog", CLONE: "clone_backlog"}


async def backlog(conn: Connection, queue: str, window_seconds: float) -> Backlog:
    """`queue`'s messages now, and those archived (done) in the last `window_seconds`."""
    row = await fetch_one(conn, _Q[_BACKLOG_QUERIES[queue]], {"window": window_seconds})
    return Backlog(int(row["waiting"]), int(row["done"]))


@dataclass(frozen=True)
class QueueMetrics:
    """One queue's figures as pgmq keeps them: messages waiting, the ages of the oldest and newest (None when
    empty), and how many were ever sent."""

    queue: str
    depth: int
    oldest_age_s: int | None
    newest_age_s: int | None
    total_sent: int


async def metrics(conn: Connection) -> list[QueueMetrics]:
    """Every queue's figures, by name."""
    return [
        QueueMetrics(
            queue=row["queue_name"],
            depth=row["queue_length"],
            oldest_age_s=row["oldest_msg_age_sec"],
            newest_age_s=row["newest_msg_age_sec"],
            total_sent=row["total_messages"],
        )
        for row in await fetch_all(conn, _Q["metrics"], {})
    ]


@dataclass(frozen=True)
class DeadLetter:
    """A message in the dead-letter queue, as stored: its id, how often it was read there, when it arrived,
    and its body (`{sourceQueue, sourceMsgId, readCount, message, error, deadAt}`, unchecked)."""

    msg_id: int
    read_ct: int
    enqueued_at: datetime
    message: object


async def dead_letters(conn: Connection, *, after: int | None, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters after `after` (from the first when None), by id, read without a delivery:
    each stays visible and its read count does not move."""
    rows = await fetch_all(conn, _Q["dead_letters"], {"after": after, "limit": limit})
    return [DeadLetter(row["msg_id"], row["read_ct"], row["enqueued_at"], row["message"]) for row in rows]


async def lock_dead_letter(conn: Connection, msg_id: int) -> object | None:
    """Lock the dead letter `msg_id` for the caller's transaction and answer its body; None when it is gone or
    another transaction holds it."""
    row = await fetch_optional(conn, _Q["lock_dead_letter"], {"msg_id": msg_id})
    return None if row is None else row["message"]


async def listen(conn: AsyncConnection[Any], queue: str) -> None:
    """LISTEN on `conn` for the queue's inserts: pgmq notifies `pgmq.q_<queue>.INSERT` on each committed one."""
    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(f"pgmq.q_{queue}.INSERT")))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def notified(conn: AsyncConnection[Any]) -> None:
    """Return once notifications have come on `conn`, a connection that only listens; raises
    `psycopg.OperationalError` once the connection is lost.

    psycopg's own `notifies()` wakes every 0.1 s to look for an interrupt, which on an idle server was most of its
    CPU (a consumer per queue, ten times a second each): this waits on the socket alone."""
    pgconn = conn.pgconn
    loop = asyncio.get_running_loop()
    while True:
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(pgconn.socket, _resolve, readable)
        try:
            await readable
        finally:
            loop.remove_reader(pgconn.socket)
        pgconn.consume_input()
        if pgconn.status != ConnStatus.OK:
            # Readable for good once the server has gone: looking again would spin.
            raise psycopg.OperationalError("the LISTEN connection was lost")
        heard = False
        while pgconn.notifies() is not None:
            heard = True
        if heard:
            return


class QueueAdmission:
    """Whether a queue may take more work now: it refuses (`BacklogFull`, a 503 with Retry-After) while what the
    queue holds would take longer than `limit_seconds` to work off at the pace it has been worked off lately.

    The pace is the messages finished (archived) in the last `window_seconds`, by every consumer of the queue
    wherever it runs, and at least `floor_rate` a second: a queue nothing has finished lately (a cold start)
    takes `limit_seconds * floor_rate` messages. What the queue holds is read at most once every
    `fresh_for` seconds per process, so a burst of uploads costs the database one query a second."""

    def __init__(
        self,
        db: Database,
        queue: str,
        limit_seconds: float,
        *,
        window_seconds: float = 30.0,
        floor_rate: float = 1.0,
        fresh_for: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.limit_seconds = limit_seconds
        self._db = db
        self._window = window_seconds
        self._floor = floor_rate
        self._fresh_for = fresh_for
        self._clock = clock
        self._read: tuple[float, Backlog] | None = None
        self._lock = asyncio.Lock()

    async def admit(self) -> None:
        """Return when the queue takes more work; raise `BacklogFull` when it holds too much."""
        held = await self._backlog()
        rate = max(held.done / self._window, self._floor)
        seconds = held.waiting / rate
        if seconds > self.limit_seconds:
            over = math.ceil((held.waiting - self.limit_seconds * rate) / rate)
            raise BacklogFull(
                f"{held.waiting} pieces of work are waiting to be checked, about {seconds:.0f} s at the pace of"
                f" the last {self._window:.0f} s, more than this server takes on ({self.limit_seconds:.0f} s);"
                " send it again later.",
                retry_after=min(max(over, 1), MAX_RETRY_AFTER_S),
            )

    async def _backlog(self) -> Backlog:
        async with self._lock:
            now = self._clock()
            if self._read is None or now - self._read[0] >= self._fresh_for:
                async with self._db.service_statement() as conn:
                    self._read = (now, await backlog(conn, self.queue, self._window))
            return self._read[1]


#: The longest Retry-After a full backlog answers: a client asks again within a minute, when the estimate may
#: have moved.
MAX_RETRY_AFTER_S: Final = 60
