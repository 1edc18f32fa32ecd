"""A pgmq consumer: the loop that reads a queue's messages in batches with a visibility timeout, runs their
handler under a concurrency cap, keeps each message invisible while it is handled, archives it on success, and
drains what it holds on stop.

A handler returns `None` when the message is done (archived) or a time to look again (the message is
re-sent with that delay and the old one archived, in one transaction, so waiting never counts as a
failed delivery). An exception is a failed delivery: the message becomes visible again after a backoff, and
past `max_reads` it is dead-lettered (`queue_consumers.dead_letters`); but `WorkPutOff` is none: the message
is made visible again after the time it names, with its same id, and its read taken back. pgmq does not check
who archives what, so the handlers' own fencing (attempt leases and versions) decides whose result counts.

Outages are not failed deliveries. A message whose handler met the database down or hung is handed back
(visible at once) by the consumer's first read that gets an answer, its delivery uncounted
(`queue_consumers.stranded`); one that met Storage down waits Storage out (`queue_consumers.storage_wait`).
Outages are logged where they are detected (backend.outages), once, not here per poll.

A consumer rests between reads until a notification of its queue (`queue_consumers.listen`), a finished
message or its poll interval wakes it. It handles no more messages at once than it has slots (`concurrency`),
takes no more than its pool has connections to spare for, and archives what it finished in the transaction of
its next read. While busy it reads once half its batch is free (all of it when `in_step`) or after
`gather_seconds`; while its handlers are quick it holds unstarted what its slots finish in
`read_ahead_seconds`. docs/concepts.md (What runs: queue consumers) has the whole behaviour.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from backend import queues
from backend.db.connection import Connection
from backend.db.units import Database
from backend.errors import DatabaseUnavailable, StorageUnavailable, WorkFailed, WorkPutOff
from backend.failpoints import failpoint
from backend.leases import Beat
from backend.queues import DeadLetterHook, Handler, Message, Reader
from queue_consumers.dead_letters import FailedDeliveries
from queue_consumers.listen import Listener, Wake
from queue_consumers.storage_wait import DependencyCheck, StorageWaits
from queue_consumers.stranded import WAITED, StrandedDeliveries

log = logging.getLogger(__name__)
#: How soon a failed visibility extension is tried again: the message must not reappear while held.
_EXTEND_RETRY_SECONDS = 1.0
#: Seconds past a message's due time at which an idle consumer reads it.
_DUE_MARGIN = 0.005
#: How much the handlers' pace moves toward each one's time as it finishes (a moving average).
_PACE_WEIGHT = 0.2


@dataclass(frozen=True)
class ConsumerConfig:
    """How one queue is consumed."""

    queue: str
    visibility_seconds: int = 30
    batch_size: int = 10
    concurrency: int = 8
    max_reads: int = 5
    #: Seconds between reads while the queue's notifications cannot be heard (no LISTEN connection), or while it
    #: has messages in hand or unread.
    poll_interval: float = 1.0
    #: Seconds an idle consumer that hears its queue's notifications rests between reads, unless a message is due
    #: sooner: the safety net for a notification lost in transit.
    idle_poll_interval: float = 30.0
    #: How long a consumer busy with messages waits for half its batch to be free before it reads fewer.
    gather_seconds: float = 0.05
    #: Whether its handlers send their statements in groups (`Database.grouped`): it then waits for its whole batch
    #: to be free, not half, so that a batch starts together and its statements go together.
    in_step: bool = False
    #: How much work, in its handlers' recent time, a busy consumer holds read and not yet started (at most a
    #: batch): what its slots get through in this long. 0: it reads only for free slots.
    read_ahead_seconds: float = 0.05
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    #: Longest a message waits out Storage uncounted before it is reported and its deliveries count.
    storage_wait_seconds: float = 3600.0


class QueueConsumer:
    """Consumes one queue until `run`'s stop event is set, then finishes what it holds and returns."""

    def __init__(
        self,
        db: Database,
        config: ConsumerConfig,
        handler: Handler,
        *,
        listen_dsn: str | None,
        on_dead_letter: DeadLetterHook | None = None,
        reader: Reader | None = None,
        dependency: DependencyCheck | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.handler = handler
        self.reader = reader or self._pgmq_read
        #: What must answer before messages are taken (Storage, for the queues whose handlers use it).
        self.dependency = dependency
        #: Messages handled and waiting to be archived with the next read.
        self._done: list[int] = []
        self._cut_short = StrandedDeliveries()
        self._failures = FailedDeliveries(
            db,
            config.queue,
            self._cut_short,
            on_dead_letter,
            max_reads=config.max_reads,
            backoff_base=config.backoff_base,
            backoff_max=config.backoff_max,
        )
        self._storage = StorageWaits(
            db,
            config.queue,
            self._cut_short,
            self._failures.failed,
            bound_seconds=config.storage_wait_seconds,
            max_reads=config.max_reads,
        )
        self._wake = Wake()
        self._inflight: set[asyncio.Task[None]] = set()
        #: Messages read and not yet started (each with its visibility keeper), in the order read.
        self._ready: collections.deque[tuple[Message, Beat]] = collections.deque()
        #: How long a handler has taken lately (seconds, a moving average), once one has finished.
        self._handler_seconds: float | None = None
        #: The messages those tasks hold: one that reappears while held (its visibility ran out while
        #: the database hung, so nothing could extend it) is not handled a second time alongside.
        self._held: set[int] = set()
        #: Whether the last read met the database's outage (or found no connection to spare).
        self._read_waited = False
        #: Set once the LISTEN connection is up (tests and benchmarks wait on it).
        self.listening = asyncio.Event()
        self._listener = Listener(listen_dsn, config.queue, self._wake, self.listening) if listen_dsn else None
        #: Seconds between a held message's visibility extensions: two may fail before it reappears.
        self._extend_every = config.visibility_seconds / 2

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; in-flight messages are finished before this returns.

        A listener that dies of anything but a lost connection takes the consumer down with it.
        """
        listener = (
            None
            if self._listener is None
            else asyncio.create_task(self._listener.run(), name=f"listen:{self.config.queue}")
        )
        consume = asyncio.create_task(self._consume(stopping), name=f"consume:{self.config.queue}")
        watched = {consume} if listener is None else {consume, listener}
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if listener is not None and listener in done:
            # The listener only returns by raising; stop taking work, finish what is held, then fail loudly.
            stopping.set()
            await consume
            listener.result()
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        consume.result()

    async def _consume(self, stopping: asyncio.Event) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        # A read costs the database much the same however few messages it takes (pgmq builds and plans its
        # query anew on every read), so a consumer that is busy reads again once half its batch is free (all of
        # it, in step), or once it has waited `gather_seconds` for that.
        batch = min(cfg.batch_size, cfg.concurrency)
        read_at = batch if cfg.in_step else max(1, batch // 2)
        gather_until: float | None = None
        stop_wait = asyncio.create_task(stopping.wait())
        stop_wait.add_done_callback(lambda _: self._wake.set())
        try:
            while not stopping.is_set():
                self._wake.clear()
                free = cfg.concurrency + self._ahead() - len(self._inflight) - len(self._ready)
                if 0 < free < read_at:
                    if gather_until is None:
                        gather_until = loop.time() + cfg.gather_seconds
                    if (left := gather_until - loop.time()) > 0:
                        await self._wake.wait(left)
                        continue
                gather_until = None
                wanted = max(0, min(cfg.batch_size, free, self.db.spare_connections()))
                if wanted > 0 and self.dependency is not None and not await self.dependency.open():
                    wanted = 0  # what was handled is still archived; nothing new is taken
                got = await self._read_and_start(wanted) if wanted > 0 or self._done or self._cut_short.stranded else 0
                if wanted > 0 and got == wanted:
                    continue
                # Every committed insert notifies (the queues' own trigger, never throttled), so a wake-up or the
                # poll interval, whichever comes first, is all there is to wait for; an idle consumer that hears
                # its notifications rests longer (`_rest`). Not while a read has yet to hand back or archive
                # what an outage left, its read having met the outage too: no notification tells that the database
                # answers again. (A read that failed otherwise is tried again after a rest, not every poll.)
                owed = (self._cut_short.stranded or self._done) and self._read_waited
                idle = wanted > 0 and got == 0 and not (self._inflight or owed) and self.listening.is_set()
                await self._wake.wait(await self._rest() if idle else cfg.poll_interval)
        finally:
            stop_wait.cancel()
            if self._inflight:
                log.info("%s: draining %d in-flight message(s)", cfg.queue, len(self._inflight) + len(self._ready))
            while self._inflight:  # a finished one starts the next that was read ahead
                await asyncio.gather(*self._inflight, return_exceptions=True)
            if self._done or self._cut_short.stranded:
                await self._read_and_start(0)

    async def _rest(self) -> float:
        """How long an idle consumer waits for a notification: until the first message of its queue that it does
        not hold becomes visible (a send with a delay, a visibility timeout run out: no notification tells of
        those), at most `idle_poll_interval`. A message visible already that the read left (to other users' turns)
        is read again after `poll_interval`, as is everything when the database cannot say."""
        cfg = self.config
        try:
            async with self.db.service_statement() as conn:
                due = await queues.next_due(conn, cfg.queue, self._held)
        except WAITED:
            return cfg.poll_interval
        except Exception:
            log.exception("%s: could not tell when the next message is due; polling", cfg.queue)
            return cfg.poll_interval
        if due is None:
            return cfg.idle_poll_interval
        if due <= 0:
            return cfg.poll_interval
        # A read at the very moment it is due could find it not yet visible, and then rest a whole poll.
        return min(due + _DUE_MARGIN, cfg.idle_poll_interval)

    def _ahead(self) -> int:
        """How many messages to hold read and unstarted: what the slots finish in `read_ahead_seconds` at the
        handlers' recent pace (none before one has finished), at most a batch."""
        cfg = self.config
        if self._handler_seconds is None or cfg.read_ahead_seconds <= 0:
            return 0
        pace = cfg.concurrency * cfg.read_ahead_seconds / max(self._handler_seconds, 1e-6)
        return min(cfg.batch_size, int(pace))

    async def _pgmq_read(self, conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        return await queues.read(conn, self.config.queue, vt, qty)

    async def _read_and_start(self, qty: int) -> int:
        """Archive what was handled since the last read and hand back what an outage stranded, then read and
        start up to `qty` messages."""
        done = list(self._done)
        stranded, unconfirmed = self._cut_short.owed()
        rows: list[dict[str, Any]] = []
        released: set[int] = set()
        try:
            # One round trip and one implicit transaction, no BEGIN or COMMIT: the archive needs no answer, nor
            # the hand-back unless it must tell whether a read whose commit went unanswered happened.
            async with self.db.service_pipeline() as conn:
                if done:
                    await queues.archive_many(conn, self.config.queue, done)
                if stranded:
                    released = await queues.hand_back(conn, self.config.queue, stranded, answer=bool(unconfirmed))
                rows = await self.reader(conn, self.config.visibility_seconds, qty) if qty > 0 else []
        except WAITED as exc:
            self._read_waited = True
            if isinstance(exc, DatabaseUnavailable):
                self._cut_short.unanswered(rows, self._held)
            return 0  # what was done is archived with a later read, or handled again once visible
        except Exception:
            self._read_waited = False
            log.exception("%s: read failed; reading again later", self.config.queue)
            return 0
        self._read_waited = False
        self._settle(done, stranded, released & unconfirmed)
        self._take(rows)
        if rows:
            # Let the new handlers run to their first wait, so the next read sees the connections they took.
            await asyncio.sleep(0)
        return len(rows)

    def _settle(self, done: list[int], stranded: dict[int, int], uncounted: set[int]) -> None:
        """Forget what a read archived (`done`) and handed back (`stranded`); `uncounted`: messages it handed
        back whose unanswered read it found did happen, a delivery nobody handled."""
        archived = set(done)
        self._done = [msg_id for msg_id in self._done if msg_id not in archived]
        self._cut_short.settled(done, stranded, uncounted)

    def _take(self, rows: list[dict[str, Any]]) -> None:
        """Hold the messages read (each kept invisible from now on) and start those that have a slot."""
        read_at = time.monotonic()
        for row in rows:
            message = msgspec.convert({**row, "read_at": read_at}, Message)
            if message.msg_id in self._held:
                continue  # the read made it invisible again; the task holding it keeps it so
            self._held.add(message.msg_id)
            keeper = Beat(
                functools.partial(self._keep_invisible, message.msg_id),
                self._extend_every,
                f"{self.config.queue}:{message.msg_id}:visibility",
            )
            self._ready.append((message, keeper))
        self._start_ready()

    def _start_ready(self) -> None:
        """Start messages read ahead, oldest first, while slots are free."""
        while self._ready and len(self._inflight) < self.config.concurrency:
            message, keeper = self._ready.popleft()
            task = asyncio.create_task(self._deliver(message, keeper), name=f"{self.config.queue}:{message.msg_id}")
            self._inflight.add(task)
            task.add_done_callback(functools.partial(self._finished, message.msg_id, time.monotonic()))

    def _finished(self, msg_id: int, started: float, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._held.discard(msg_id)
        took = time.monotonic() - started
        last = self._handler_seconds
        self._handler_seconds = took if last is None else last + _PACE_WEIGHT * (took - last)
        self._start_ready()
        self._wake.set()

    async def _deliver(self, message: Message, keeper: Beat) -> None:
        if self._cut_short.reads(message) > self.config.max_reads:
            keeper.cancel()
            await self._failures.dead_letter(message, "delivered too often without finishing (worker crashes?)")
            return
        try:
            retry_at = await self.handler(message)
        except WAITED as exc:
            # Recording a failure would fail too.
            self._cut_short.waits(message, exc)
            log.debug("%s: message %d waits for the database", self.config.queue, message.msg_id)
            return
        except StorageUnavailable:
            await self._storage.unavailable(message)
            return
        except WorkPutOff as exc:
            log.debug("%s: message %d put off: %s", self.config.queue, message.msg_id, exc)
            await self._put_off(message, exc.seconds)
            return
        except Exception as exc:
            if isinstance(exc, WorkFailed):
                log.warning("%s: message %d failed (delivery %d): %s", *self._named(message), exc)
            else:
                log.exception("%s: message %d failed (delivery %d)", *self._named(message))
            await self._failures.failed(message, f"{type(exc).__name__}: {exc}")
            return
        finally:
            keeper.cancel()
        failpoint("before_archive")
        if retry_at is None:
            self._done.append(message.msg_id)  # archived by the next read's transaction
            return
        await self._storage.send_again(message, max(0, math.ceil((retry_at - datetime.now(UTC)).total_seconds())))

    def _named(self, message: Message) -> tuple[str, int, int]:
        return self.config.queue, message.msg_id, message.read_ct

    async def _put_off(self, message: Message, seconds: float) -> None:
        """Make the message visible again after `seconds`, its delivery taken back (`WorkPutOff`)."""
        try:
            async with self.db.service_statement() as conn:
                await queues.put_off(conn, self.config.queue, message.msg_id, message.read_ct, math.ceil(seconds))
        except WAITED as exc:
            self._cut_short.waits(message, exc)
        except Exception:
            log.exception("%s: could not put message %d off", self.config.queue, message.msg_id)

    async def _keep_invisible(self, msg_id: int) -> float:
        """Extend a held message's invisibility; the seconds until the next extension (sooner after a failure:
        the message must not reappear while held)."""
        try:
            async with self.db.service_statement() as conn:
                await queues.set_vt(conn, self.config.queue, msg_id, self.config.visibility_seconds)
        except WAITED:
            return min(self._extend_every, _EXTEND_RETRY_SECONDS)
        except Exception:
            log.exception("%s: could not extend message %d", self.config.queue, msg_id)
            return min(self._extend_every, _EXTEND_RETRY_SECONDS)
        return self._extend_every
