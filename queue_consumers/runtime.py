"""A pgmq consumer: batch reads with a visibility timeout, LISTEN wake-ups with polling as the safety
net, a concurrency cap, visibility kept while a message is handled, archive on success, backoff on
failure, a dead-letter queue past `max_reads`, and a drain on stop.

A handler returns `None` when the message is done (archived) or a time to look again (the message is
re-sent with that delay and the old one archived, in one transaction, so waiting never counts as a
failed delivery). An exception is a failed delivery: the message becomes visible again after a
backoff, and its error is kept for the dead letter; but `WorkPutOff` is none: the message is made visible
again after the time it names, with its same id, and its read taken back. pgmq does not check who archives
what, so the handlers' own fencing (attempt leases and versions) decides whose result counts.

Outages are not failed deliveries. A message whose handler met the database down or hung is handed back
(visible at once) by the consumer's first read that gets an answer; one that met Storage down is handed
back at once as a new message carrying when its wait began (`storageWait`), and a consumer whose handlers
need Storage reads nothing while its `DependencyCheck` finds Storage unreachable. Past `storage_wait_seconds` the
message is reported once and from then on counts, ending as a `storage_unavailable` dead letter. Outages
are logged where they are detected (backend.outages), once, not here per poll.

A consumer handles no more messages at once than it has slots (`concurrency`), takes no more than its pool
has connections to spare for, and archives what it finished in the transaction of its next read. While
busy it reads once half its batch is free (all of it when `in_step`) or after `gather_seconds`; while its
handlers are quick it holds unstarted what its slots finish in `read_ahead_seconds`. docs/concepts.md
(What runs: queue consumers) has the whole behaviour.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
from prometheus_client import Counter

from backend import queues
from backend.db.audit import record_audit
from backend.db.connection import Connection, last_answer_at
from backend.db.units import Database, translate_db_errors
from backend.errors import DatabaseUnavailable, StorageUnavailable, TooManyRequests, WorkFailed, WorkPutOff
from backend.failpoints import failpoint
from backend.leases import Beat
from backend.outages import DATABASE, Outage
from backend.queues import DeadLetterHook, Handler, Message, Reader

log = logging.getLogger(__name__)
# No answer from the database for this delivery (down, hung, or every connection busy): nothing this
# delivery did wrong, already logged as an outage, and tried again without counting, as if never read.
_WAITED = (DatabaseUnavailable, TooManyRequests)
#: How soon a message handed back for a Storage outage is visible again, to a consumer that reaches Storage.
_HANDED_BACK_SECONDS = 1
#: Most messages whose uncounted deliveries a consumer remembers (older ones are forgotten first).
_UNCOUNTED_MAX = 10_000
#: How soon a failed visibility extension is tried again: the message must not reappear while held.
_EXTEND_RETRY_SECONDS = 1.0
#: libpq's connect timeout for the LISTEN connection (whole seconds), so a hung server delays it only.
_LISTEN_CONNECT_TIMEOUT = 5
#: Seconds past a message's due time at which an idle consumer reads it.
_DUE_MARGIN = 0.005
#: How much the handlers' pace moves toward each one's time as it finishes (a moving average).
_PACE_WEIGHT = 0.2
#: Where a message handed back for Storage keeps its wait: `{"since": ISO time, "reported": bool}`.
STORAGE_WAIT = "storageWait"
#: The code a message that waited out Storage past its bound fails (and is dead-lettered) with; its
#: deliveries' recorded errors start with it.
STORAGE_UNAVAILABLE = "storage_unavailable"
#: The audit event of a message reported for waiting out Storage past its bound.
STORAGE_WAIT_AUDIT = "queue.storage_wait_exceeded"
#: Served at /metrics by an API process that runs the consumers too (`voicegate up`).
STORAGE_WAIT_EXCEEDED = Counter(
    "voicegate_queue_storage_wait_exceeded",
    "Queue messages reported for waiting out Storage longer than VOICEGATE_STORAGE_WAIT_SECONDS",
    ("queue",),
)


class StorageWait(msgspec.Struct, frozen=True):
    """How long a message has waited out Storage (`STORAGE_WAIT` in its body)."""

    since: datetime
    reported: bool = False


def storage_wait(message: dict[str, Any]) -> StorageWait | None:
    """The message's wait for Storage, if it has one (an unreadable one counts as none)."""
    try:
        return msgspec.convert(message.get(STORAGE_WAIT), StorageWait | None)
    except msgspec.ValidationError:
        return None


def without_storage_wait(message: dict[str, Any]) -> dict[str, Any]:
    """The message as its producer sent it."""
    return {key: value for key, value in message.items() if key != STORAGE_WAIT}


class DependencyCheck:
    """Whether a dependency every handler of a consumer needs (Storage) answers, asked before each read so
    that a consumer takes no work it could only fail. Open once a probe has answered, for as long as the
    dependency's outage tracker (fed by every call to it) has it up; while it is down, or before it was
    ever checked, it is probed again at most every `every` seconds. The consumers of a process share one."""

    def __init__(self, outage: Outage, probe: Callable[[], Awaitable[bool]], every: float) -> None:
        self._outage = outage
        self._probe = probe
        self._every = every
        self._checked = False
        self._probed_at = -math.inf
        self._lock = asyncio.Lock()

    async def open(self) -> bool:
        """Whether to take work now (probing the dependency if it is its time)."""
        if self._checked and not self._outage.down:
            return True
        async with self._lock:
            if self._checked and not self._outage.down:
                return True  # another consumer's probe answered meanwhile
            if time.monotonic() - self._probed_at < self._every:
                return False
            self._probed_at = time.monotonic()
            self._checked = await self._probe()
            return self._checked


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
        self.listen_dsn = listen_dsn
        self.on_dead_letter = on_dead_letter
        self.reader = reader or self._pgmq_read
        #: What must answer before messages are taken (Storage, for the queues whose handlers use it).
        self.dependency = dependency
        #: Messages handled and waiting to be archived with the next read.
        self._done: list[int] = []
        #: Deliveries of a message that ended waiting for the database, not counted toward `max_reads`.
        self._uncounted: dict[int, int] = {}
        #: Messages whose handler met the database down, each with the `read_ct` it was read with: handed back
        #: by the next read that gets an answer, unless somebody has read the message since.
        self._stranded: dict[int, int] = {}
        #: Those of them a read took whose commit went unanswered: the read may not have happened at all, so
        #: its delivery is not counted toward `max_reads` only once the hand-back finds it did.
        self._unconfirmed: set[int] = set()
        self._wake = _Wake()
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
        #: Seconds between a held message's visibility extensions: two may fail before it reappears.
        self._extend_every = config.visibility_seconds / 2

    async def run(self, stopping: asyncio.Event) -> None:
        """Consume until `stopping` is set; in-flight messages are finished before this returns.

        A listener that dies of anything but a lost connection takes the consumer down with it.
        """
        listener = asyncio.create_task(self._listen(), name=f"listen:{self.config.queue}") if self.listen_dsn else None
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
                got = await self._read_and_start(wanted) if wanted > 0 or self._done or self._stranded else 0
                if wanted > 0 and got == wanted:
                    continue
                # Every committed insert notifies (the queues' own trigger, never throttled), so a wake-up or the
                # poll interval, whichever comes first, is all there is to wait for; an idle consumer that hears
                # its notifications rests longer (`_rest`). Not while a read has yet to hand back or archive
                # what an outage left, its read having met the outage too: no notification tells that the database
                # answers again. (A read that failed otherwise is tried again after a rest, not every poll.)
                owed = (self._stranded or self._done) and self._read_waited
                idle = wanted > 0 and got == 0 and not (self._inflight or owed) and self.listening.is_set()
                await self._wake.wait(await self._rest() if idle else cfg.poll_interval)
        finally:
            stop_wait.cancel()
            if self._inflight:
                log.info("%s: draining %d in-flight message(s)", cfg.queue, len(self._inflight) + len(self._ready))
            while self._inflight:  # a finished one starts the next that was read ahead
                await asyncio.gather(*self._inflight, return_exceptions=True)
            if self._done or self._stranded:
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
        except _WAITED:
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
        stranded = dict(self._stranded)
        unconfirmed = self._unconfirmed & stranded.keys()
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
        except _WAITED as exc:
            self._read_waited = True
            if isinstance(exc, DatabaseUnavailable):
                self._unanswered(rows)
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
        for msg_id in done:
            self._uncounted.pop(msg_id, None)
        for msg_id in uncounted:
            self._not_counted(msg_id)
        for msg_id, read_ct in stranded.items():
            if self._stranded.get(msg_id) == read_ct:
                del self._stranded[msg_id]
                self._unconfirmed.discard(msg_id)

    def _unanswered(self, rows: list[dict[str, Any]]) -> None:
        """A read's rows came but the answer to its commit did not (the pipeline commits as it ends): the server
        may have committed it as it resumed, leaving its messages invisible for their whole visibility timeout
        with nobody holding them, so they are handed back with the database."""
        for row in rows:
            if row["msg_id"] not in self._held:  # a held one is kept invisible by its holder
                self._stranded[row["msg_id"]] = row["read_ct"]
                self._unconfirmed.add(row["msg_id"])

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

    def _reads(self, message: Message) -> int:
        """The message's deliveries that count toward `max_reads` (this one included)."""
        return message.read_ct - self._uncounted.get(message.msg_id, 0)

    def _not_counted(self, msg_id: int) -> None:
        if len(self._uncounted) >= _UNCOUNTED_MAX and msg_id not in self._uncounted:
            self._uncounted.pop(next(iter(self._uncounted)))
        self._uncounted[msg_id] = self._uncounted.get(msg_id, 0) + 1

    def _waits(self, message: Message, exc: DatabaseUnavailable | TooManyRequests) -> None:
        """`message` could not be handled, handed back or scheduled because the database was out of reach or had
        no connection to spare: it comes back uncounted, handed back by the first read that gets an answer (so
        as the database does) or, when every connection was busy, after its visibility timeout."""
        self._not_counted(message.msg_id)
        if isinstance(exc, DatabaseUnavailable):
            self._stranded[message.msg_id] = message.read_ct

    async def _deliver(self, message: Message, keeper: Beat) -> None:
        if self._reads(message) > self.config.max_reads:
            keeper.cancel()
            await self._dead_letter(message, "delivered too often without finishing (worker crashes?)")
            return
        try:
            retry_at = await self.handler(message)
        except _WAITED as exc:
            # Recording a failure would fail too.
            self._waits(message, exc)
            log.debug("%s: message %d waits for the database", self.config.queue, message.msg_id)
            return
        except StorageUnavailable:
            await self._storage_unavailable(message)
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
            await self._failed(message, f"{type(exc).__name__}: {exc}")
            return
        finally:
            keeper.cancel()
        failpoint("before_archive")
        if retry_at is None:
            self._done.append(message.msg_id)  # archived by the next read's transaction
            return
        await self._send_again(message, max(0, math.ceil((retry_at - datetime.now(UTC)).total_seconds())))

    def _named(self, message: Message) -> tuple[str, int, int]:
        return self.config.queue, message.msg_id, message.read_ct

    async def _storage_unavailable(self, message: Message) -> None:
        """Storage's outage, not this message's failure: handed back uncounted for a consumer that reaches
        Storage while the message's wait is within its bound; reported once past it, and from then on each
        delivery that meets Storage down is a failed one (see the module docstring)."""
        wait = storage_wait(message.message)
        if wait is not None and wait.reported:
            began = wait.since.isoformat(timespec="seconds")
            await self._failed(
                message, f"{STORAGE_UNAVAILABLE}: Storage has been unreachable for this work since {began}"
            )
            return
        now = datetime.now(UTC)
        since = now if wait is None else wait.since
        if (now - since).total_seconds() < self.config.storage_wait_seconds:
            await self._send_again(message, _HANDED_BACK_SECONDS, wait=StorageWait(since))
            return
        await self._report_storage_wait(message, since, now)

    async def _report_storage_wait(self, message: Message, since: datetime, now: datetime) -> None:
        """Report a message that has waited out Storage past its bound, and send it again marked reported, in
        one transaction (so it is reported once, whichever worker reads it next); then log and count it."""
        cfg = self.config
        waited = round((now - since).total_seconds())
        detail = {
            "queue": cfg.queue,
            "msg_id": message.msg_id,
            "message": without_storage_wait(message.message),
            "waiting_since": since,
            "waited_seconds": waited,
            "bound_seconds": cfg.storage_wait_seconds,
        }
        try:
            async with self.db.service_transaction() as conn:
                await self._send(conn, message, _HANDED_BACK_SECONDS, StorageWait(since, reported=True))
                subject = f"{cfg.queue}/{message.msg_id}"
                await record_audit(conn, "worker", STORAGE_WAIT_AUDIT, "queue_message", subject, detail=detail)
        except _WAITED as exc:
            self._waits(message, exc)  # reported by a later delivery
            return
        except Exception:
            log.exception("%s: could not report message %d waiting out Storage", cfg.queue, message.msg_id)
            return
        STORAGE_WAIT_EXCEEDED.labels(cfg.queue).inc()
        log.error(
            "%s: message %d has waited out Storage for %d s (since %s), longer than VOICEGATE_STORAGE_WAIT_SECONDS"
            " (%d s): from now on a delivery that meets Storage down counts, and the message is dead-lettered"
            " after %d of them",
            cfg.queue,
            message.msg_id,
            waited,
            since.isoformat(timespec="seconds"),
            cfg.storage_wait_seconds,
            cfg.max_reads,
        )

    async def _send(self, conn: Connection, message: Message, delay: int, wait: StorageWait | None) -> None:
        """On `conn`'s transaction: archive this delivery and send the message anew (with `wait`, or without any wait
        for Storage); not anew when it was gone already (cancelled while in hand: its user was erased)."""
        if not await queues.archive(conn, self.config.queue, message.msg_id):
            return
        body = without_storage_wait(message.message)
        if wait is not None:
            body[STORAGE_WAIT] = msgspec.to_builtins(wait)
        await queues.send(conn, self.config.queue, body, delay)

    async def _send_again(self, message: Message, delay: int, *, wait: StorageWait | None = None) -> None:
        """Send the message anew, visible after `delay` seconds, and archive this delivery, in one
        transaction: the wait counts as no delivery, whoever reads it next. `wait`: its wait for Storage
        so far; without one, a wait it had is over (this delivery got past Storage)."""
        try:
            async with self.db.service_transaction() as conn:
                await self._send(conn, message, delay, wait)
        except _WAITED as exc:
            self._waits(message, exc)  # handlers are safe to repeat
        except Exception:
            log.exception("%s: could not archive message %d", self.config.queue, message.msg_id)

    async def _put_off(self, message: Message, seconds: float) -> None:
        """Make the message visible again after `seconds`, its delivery taken back (`WorkPutOff`)."""
        try:
            async with self.db.service_statement() as conn:
                await queues.put_off(conn, self.config.queue, message.msg_id, message.read_ct, math.ceil(seconds))
        except _WAITED as exc:
            self._waits(message, exc)
        except Exception:
            log.exception("%s: could not put message %d off", self.config.queue, message.msg_id)

    async def _keep_invisible(self, msg_id: int) -> float:
        """Extend a held message's invisibility; the seconds until the next extension (sooner after a failure:
        the message must not reappear while held)."""
        try:
            async with self.db.service_statement() as conn:
                await queues.set_vt(conn, self.config.queue, msg_id, self.config.visibility_seconds)
        except _WAITED:
            return min(self._extend_every, _EXTEND_RETRY_SECONDS)
        except Exception:
            log.exception("%s: could not extend message %d", self.config.queue, msg_id)
            return min(self._extend_every, _EXTEND_RETRY_SECONDS)
        return self._extend_every

    async def _failed(self, message: Message, error: str) -> None:
        reads = self._reads(message)
        if reads >= self.config.max_reads:
            await self._dead_letter(message, error)
            return
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2 ** (reads - 1))
        delay = math.ceil(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not security
        queue = self.config.queue
        try:
            async with self.db.service_transaction() as conn:
                await queues.set_vt(conn, queue, message.msg_id, delay)
                await queues.record_error(conn, queue, message.msg_id, message.read_ct, error)
                await queues.tell(conn, queue)  # another consumer rests until the visibility it read ran out
        except _WAITED as exc:
            # Counted, but without its backoff: a failure met with the database out of reach is most likely the
            # outage's, so it is handed back as the database answers (with every connection busy, after its
            # visibility timeout).
            if isinstance(exc, DatabaseUnavailable):
                self._stranded[message.msg_id] = message.read_ct
        except Exception:
            log.exception("%s: could not schedule message %d again", self.config.queue, message.msg_id)

    async def _dead_letter(self, message: Message, error: str) -> None:
        try:
            async with self.db.service_transaction() as conn:
                recorded = await queues.take_error(conn, self.config.queue, message.msg_id)
                reason = recorded if recorded and error.startswith("delivered too often") else error
                storage = reason.startswith(f"{STORAGE_UNAVAILABLE}:")
                letter = {
                    "sourceQueue": self.config.queue,
                    "sourceMsgId": message.msg_id,
                    "readCount": message.read_ct,
                    # As its producer sent it: a replay starts with no wait for Storage behind it.
                    "message": without_storage_wait(message.message),
                    "error": {
                        "code": STORAGE_UNAVAILABLE if storage else "max_reads_exceeded",
                        "message": reason[:1000],
                    },
                    "deadAt": datetime.now(UTC).isoformat(),
                }
                await queues.send(conn, queues.DEAD_LETTER, letter)
                await queues.archive(conn, self.config.queue, message.msg_id)
                if self.on_dead_letter is not None:
                    if storage:
                        await self.on_dead_letter(conn, message, STORAGE_UNAVAILABLE, _after_code(reason))
                    else:
                        await self.on_dead_letter(conn, message, "dead_lettered", reason)
        except _WAITED:
            return  # dead-lettered on a later delivery
        except Exception:
            log.exception("%s: could not dead-letter message %d", self.config.queue, message.msg_id)
            return
        log.error("%s: message %d dead-lettered: %s", self.config.queue, message.msg_id, reason)

    async def _listen(self) -> None:
        dsn = self.listen_dsn or ""
        pause = 0.1
        while True:
            began = time.monotonic()
            try:
                with translate_db_errors():
                    connecting = psycopg.AsyncConnection.connect(
                        dsn, autocommit=True, connect_timeout=_LISTEN_CONNECT_TIMEOUT
                    )
                    async with await connecting as conn:
                        await queues.listen(conn, self.config.queue)
                        pause = 0.1
                        self.listening.set()
                        # Notifications sent while we were not listening are gone: look once.
                        self._wake.set()
                        while True:
                            await queues.notified(conn)
                            self._wake.set()
            except DatabaseUnavailable as exc:
                # The database's outage, logged once as it starts; its end is logged by the first unit of work
                # that gets an answer again (a listener back before the pool is would end it too early, and
                # the pool's next wait would start it again). Meanwhile the polls deliver.
                # A connection refused after another connection got an answer says nothing new: it was tried
                # as the server came back (CI: a refusal by the restarting server, read just after the first
                # answer, began a new outage, and a request waiting for a connection was answered 503).
                if self.listening.is_set() or last_answer_at() < began:
                    DATABASE.failed(exc)
                self.listening.clear()
                self._wake.set()  # a consumer resting on its notifications polls again meanwhile
                log.debug("%s: LISTEN connection lost; polling until it is back", self.config.queue)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)


class _Wake:
    """What a consumer waits for between reads: a notification, a finished message or the stop (`set`), or its
    time running out. A future and a timer per wait, so that a wait makes no task."""

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        """Wake the consumer (now, or as its next wait begins)."""
        self._set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        """Forget wake-ups so far."""
        self._set = False

    async def wait(self, seconds: float) -> None:
        """Return once set, or after `seconds`."""
        if self._set:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _after_code(error: str) -> str:
    """A recorded `code: message` error's message."""
    return error.partition(": ")[2] or error
