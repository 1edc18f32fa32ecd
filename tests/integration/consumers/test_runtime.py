"""The consumer runtime against a real pgmq queue: wake-ups, archive, defer, backoff, dead letters,
the concurrency cap, visibility kept during long work, draining on stop, a dying listener; deliveries
that waited on the database not counted, and no more messages taken than there are connections for; a
Storage outage handed back uncounted (keeping when its wait began) until its bound, then reported once and
dead-lettered; no message taken while its dependency check finds Storage down; a busy consumer reading in batches
(once half its batch is free, all of it in step, or its gather time is up), and reading ahead while its
handlers are quick, never while they are slow."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from backend.db.connection import Connection
from backend.db.pool import create_pool
from backend.db.units import Database
from backend.errors import DatabaseUnavailable, ServerBusy, StorageUnavailable, WorkPutOff
from backend.outages import DATABASE, Outage
from backend.queues import Message
from backend.settings import settings_from_env
from devkit.db import Conn, one
from queue_consumers.runtime import ConsumerConfig, QueueConsumer
from queue_consumers.storage_wait import DependencyCheck

QUEUE = "voice_synthesis"  # any queue with notify-on-insert; nothing else consumes it in these tests


def send(db: Conn, body: dict[str, Any]) -> int:
    msg_id: int = one(db, "select pgmq.send(%s, %s::jsonb) as id", (QUEUE, json.dumps(body)))["id"]
    return msg_id


def archived(db: Conn) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(f"select msg_id, read_ct, message from pgmq.a_{QUEUE} order by msg_id").fetchall()


def queued(db: Conn) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(f"select msg_id, read_ct, vt, message from pgmq.q_{QUEUE} order by msg_id").fetchall()


def dead_letters(db: Conn) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return [r["message"] for r in cur.execute("select message from pgmq.q_voice_dead_letter order by msg_id")]


#: Longest a handler waits for its test to let it finish.
RELEASE_SECONDS = 30


@asynccontextmanager
async def running(consumer: QueueConsumer) -> AsyncIterator[asyncio.Event]:
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(stopping))
    try:
        yield stopping
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait for a condition the consumer makes true (checked every 20 ms)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def consumer(
    database: Database,
    db_dsn: str | None,
    handler: Callable[[Message], Awaitable[datetime | None]],
    **config: Any,
) -> QueueConsumer:
    settings = {"queue": QUEUE, "poll_interval": 30.0, **config}
    return QueueConsumer(database, ConsumerConfig(**settings), handler, listen_dsn=db_dsn)


async def test_notify_wakes_the_consumer_and_success_archives(database: Database, db_dsn: str, db: Conn) -> None:
    seen: list[dict[str, Any]] = []

    async def handle(message: Message) -> None:
        seen.append(message.message)

    worker = consumer(database, db_dsn, handle)
    async with running(worker):
        await asyncio.wait_for(worker.listening.wait(), 5)
        started = time.monotonic()
        send(db, {"n": 1})
        # Polling is 30 s apart here, so only the notification can deliver this quickly.
        await until(lambda: len(archived(db)) == 1, within=5)
        assert time.monotonic() - started < 5
    assert seen == [{"n": 1}]
    assert queued(db) == []


async def test_without_listen_polling_still_delivers(database: Database, db: Conn) -> None:
    async def handle(_: Message) -> None:
        return None

    send(db, {"n": 1})
    async with running(consumer(database, None, handle, poll_interval=0.05)):
        await until(lambda: len(archived(db)) == 1)


async def test_a_burst_of_inserts_is_all_delivered(database: Database, db_dsn: str, db: Conn) -> None:
    async def handle(_: Message) -> None:
        return None

    worker = consumer(database, db_dsn, handle)
    async with running(worker):
        await asyncio.wait_for(worker.listening.wait(), 5)
        for n in range(5):
            send(db, {"n": n})  # several inserts within a few milliseconds, each notifying as it commits
        await until(lambda: len(archived(db)) == 5, within=5)


async def test_defer_resends_with_a_delay_and_does_not_count_as_a_failure(database: Database, db: Conn) -> None:
    calls: list[int] = []

    async def handle(message: Message) -> datetime | None:
        calls.append(message.read_ct)
        return datetime.now(UTC) + timedelta(seconds=30) if len(calls) == 1 else None

    original = send(db, {"n": 1})
    async with running(consumer(database, None, handle, poll_interval=0.05)):
        await until(lambda: len(archived(db)) == 1)
        [again] = queued(db)
    assert [row["msg_id"] for row in archived(db)] == [original]
    assert again["message"] == {"n": 1}
    assert again["msg_id"] != original
    assert again["read_ct"] == 0
    assert again["vt"] > datetime.now(UTC) + timedelta(seconds=20)
    assert calls == [1]


async def test_a_put_off_message_keeps_its_id_and_its_delivery_is_taken_back(database: Database, db: Conn) -> None:
    calls: list[int] = []

    async def handle(message: Message) -> None:
        calls.append(message.read_ct)
        if len(calls) < 3:
            raise WorkPutOff("not here now", 1 if len(calls) == 2 else 30)

    msg_id = send(db, {"n": 1})
    async with running(consumer(database, None, handle, poll_interval=0.05, max_reads=1)):
        await until(lambda: len(calls) == 1)
        await until(lambda: queued(db)[0]["read_ct"] == 0)
        [waiting] = queued(db)
        assert waiting["msg_id"] == msg_id
        assert waiting["vt"] > datetime.now(UTC) + timedelta(seconds=20)
        # Due again now: with max_reads 1 it is delivered, put off (1 s) and delivered again, never dead-lettered.
        db.execute(f"update pgmq.q_{QUEUE} set vt = clock_timestamp() where msg_id = %s", (msg_id,))
        await until(lambda: len(archived(db)) == 1)
    assert calls == [1, 1, 1]
    assert dead_letters(db) == []
    assert one(db, "select count(*) as n from voicegate.queue_message_errors")["n"] == 0


async def test_failures_back_off_then_dead_letter_with_the_error(database: Database, db: Conn) -> None:
    hooked: list[tuple[int, str, str]] = []

    async def handle(message: Message) -> None:
        raise ValueError(f"boom on delivery {message.read_ct}")

    async def on_dead(conn: Connection, message: Message, code: str, reason: str) -> None:
        await conn.execute("select 1")  # runs inside the dead-lettering transaction
        hooked.append((message.msg_id, code, reason))

    msg_id = send(db, {"n": 1})
    worker = QueueConsumer(
        database,
        ConsumerConfig(queue=QUEUE, poll_interval=0.05, max_reads=2, backoff_base=1.0),
        handle,
        listen_dsn=None,
        on_dead_letter=on_dead,
    )
    async with running(worker):
        await until(lambda: len(dead_letters(db)) == 1)
    [letter] = dead_letters(db)
    assert (letter["sourceQueue"], letter["sourceMsgId"], letter["readCount"]) == (QUEUE, msg_id, 2)
    assert letter["message"] == {"n": 1}
    assert letter["error"]["message"] == "ValueError: boom on delivery 2"
    assert letter["error"]["code"] == "max_reads_exceeded"
    assert hooked == [(msg_id, "dead_lettered", "ValueError: boom on delivery 2")]
    assert queued(db) == []
    assert [r["msg_id"] for r in archived(db)] == [msg_id]


async def test_a_message_delivered_too_often_is_dead_lettered_with_its_recorded_error(
    database: Database, db: Conn
) -> None:
    handled: list[int] = []

    async def handle(message: Message) -> None:
        handled.append(message.msg_id)

    msg_id = send(db, {"n": 1})
    # Three earlier deliveries whose workers died; the last one recorded an error first.
    db.execute(f"update pgmq.q_{QUEUE} set read_ct = 3 where msg_id = %s", (msg_id,))
    db.execute(
        "insert into voicegate.queue_message_errors (queue_name, msg_id, read_ct, error) values (%s, %s, 3, 'oom')",
        (QUEUE, msg_id),
    )
    async with running(consumer(database, None, handle, poll_interval=0.05, max_reads=3)):
        await until(lambda: len(dead_letters(db)) == 1)
    assert handled == []
    assert dead_letters(db)[0]["error"]["message"] == "oom"
    assert one(db, "select count(*) as n from voicegate.queue_message_errors")["n"] == 0


async def test_concurrency_is_capped(database: Database, db: Conn) -> None:
    active = 0
    peak = 0
    release = asyncio.Event()

    async def handle(_: Message) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.wait_for(release.wait(), RELEASE_SECONDS)
        active -= 1

    for n in range(10):
        send(db, {"n": n})
    async with running(consumer(database, None, handle, poll_interval=0.05, concurrency=3, batch_size=10)):
        await until(lambda: active == 3)
        # Further polls find free slots only once a handler finishes.
        await asyncio.sleep(0.2)
        assert peak == 3
        release.set()
        await until(lambda: len(archived(db)) == 10)
    assert peak == 3


async def test_visibility_is_extended_while_a_message_is_handled(database: Database, db: Conn) -> None:
    release = asyncio.Event()
    deliveries: list[int] = []

    async def handle(message: Message) -> None:
        deliveries.append(message.read_ct)
        await asyncio.wait_for(release.wait(), RELEASE_SECONDS)

    msg_id = send(db, {"n": 1})
    async with running(consumer(database, None, handle, poll_interval=0.05, visibility_seconds=1)):
        await until(lambda: deliveries == [1])
        # Past two visibility timeouts, the message is still invisible: nobody else gets it.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            [row] = queued(db)
            assert row["vt"] > datetime.now(UTC)
            await asyncio.sleep(0.1)
        release.set()
        await until(lambda: len(archived(db)) == 1)
    assert deliveries == [1]
    assert archived(db)[0]["msg_id"] == msg_id


async def test_stop_drains_in_flight_work(database: Database, db: Conn) -> None:
    started = asyncio.Event()
    finished: list[int] = []

    async def handle(message: Message) -> None:
        started.set()
        await asyncio.sleep(0.3)  # the slow provider call the stop arrives in the middle of
        finished.append(message.msg_id)

    msg_id = send(db, {"n": 1})
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer(database, None, handle, poll_interval=0.05).run(stopping))
    await asyncio.wait_for(started.wait(), 5)
    stopping.set()
    await asyncio.wait_for(task, 5)
    assert finished == [msg_id]
    assert [r["msg_id"] for r in archived(db)] == [msg_id]


async def test_a_listener_that_dies_unexpectedly_stops_the_consumer_loudly(database: Database) -> None:
    async def handle(_: Message) -> None:
        return None

    # Not a lost connection (which is retried) but a listener that cannot work at all.
    worker = consumer(database, "postgresql://[bad", handle)
    with pytest.raises(psycopg.ProgrammingError):
        await asyncio.wait_for(worker.run(asyncio.Event()), 10)


async def test_a_read_that_keeps_failing_otherwise_is_not_retried_every_poll_for_what_it_owes(
    database: Database, db_dsn: str, db: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    """The handler met the outage, so the read owes the message a hand-back; but the read keeps failing for
    another reason (a bug, not the database): the consumer rests between its tries as an idle one does, and its log
    holds one traceback a rest, not one a poll."""
    started: list[float] = []

    async def handle(_: Message) -> None:
        started.append(time.monotonic())
        raise DatabaseUnavailable

    worker = consumer(database, db_dsn, handle, poll_interval=0.05, visibility_seconds=30, idle_poll_interval=30.0)
    read = worker.reader
    failures: list[float] = []

    async def read_failing_once_owed(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        if worker._cut_short.stranded:
            failures.append(time.monotonic())
            raise RuntimeError("a read that cannot work")
        return await read(conn, vt, qty)

    worker.reader = read_failing_once_owed
    async with running(worker):
        await asyncio.wait_for(worker.listening.wait(), 5)
        send(db, {"n": 1})
        await until(lambda: len(failures) >= 1)
        first = failures[0]
        await until(lambda: time.monotonic() - first > 1.0)  # twenty polls' time
    assert len(started) == 1
    assert len(failures) <= 3, f"{len(failures)} failed reads in 1 s at a poll interval of 0.05 s"
    logged = [r for r in caplog.records if r.getMessage().endswith("read failed; reading again later")]
    assert 1 <= len(logged) == len(failures)


async def test_a_listen_connection_refused_after_an_answer_begins_no_outage(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The listener's connection tried as the server came back is refused, and that refusal is read after a
    pooled connection got an answer: no new outage begins (one would answer a request waiting for a connection 503).
    A refusal with no answer since its attempt began is an outage, as before."""

    async def handle(_: Message) -> None:
        return None

    attempts: asyncio.Queue[asyncio.Event] = asyncio.Queue()
    tells: list[asyncio.Event] = []
    closed: list[asyncio.Future[None]] = []

    async def refuse_when_told(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        told, done = asyncio.Event(), asyncio.get_running_loop().create_future()
        tells.append(told)
        closed.append(done)
        await attempts.put(told)
        await told.wait()
        writer.close()  # libpq: "server closed the connection unexpectedly"
        await writer.wait_closed()
        done.set_result(None)

    server = await asyncio.start_server(refuse_when_told, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    listen_dsn = f"postgresql://nobody@127.0.0.1:{port}/nothing?sslmode=disable&gssencmode=disable"
    worker = consumer(database, listen_dsn, handle)
    await database.ping()
    assert DATABASE.since is None

    def outages_begun() -> int:
        return sum(r.name == "backend.outages" and r.levelno == logging.ERROR for r in caplog.records)

    try:
        async with server, running(worker):
            first = await asyncio.wait_for(attempts.get(), 10)
            await database.ping()  # an answer after the attempt began
            first.set()
            second = await asyncio.wait_for(attempts.get(), 10)  # the first was refused, and retried
            assert (outages_begun(), DATABASE.since) == (0, None), "a refusal read after an answer begins no outage"
            second.set()
            await asyncio.wait_for(attempts.get(), 10)
            # (The consumer's read that the refusal wakes may have ended it since.)
            assert outages_begun() == 1, "a refusal with no answer since it was tried is an outage"
    finally:
        for told in tells:
            told.set()
        await asyncio.wait_for(asyncio.gather(*closed), 10)
        await database.ping()  # ends it for the tests that follow
    assert DATABASE.since is None


@pytest.mark.parametrize("waited", [DatabaseUnavailable, ServerBusy])
async def test_a_delivery_that_waited_on_the_database_does_not_count_toward_max_reads(
    database: Database, db: Conn, waited: type[Exception]
) -> None:
    deliveries: list[int] = []

    async def handle(message: Message) -> None:
        deliveries.append(message.read_ct)
        if len(deliveries) <= 3:
            raise waited  # no connection in time: the database down, or busy with others

    msg_id = send(db, {"n": 1})
    # Each waited delivery comes back after its one-second visibility timeout; two would be its max.
    async with running(consumer(database, None, handle, poll_interval=0.05, visibility_seconds=1, max_reads=2)):
        await until(lambda: len(archived(db)) == 1)
    assert deliveries == [1, 2, 3, 4]
    assert dead_letters(db) == []
    assert [r["msg_id"] for r in archived(db)] == [msg_id]
    assert one(db, "select count(*) as n from voicegate.queue_message_errors")["n"] == 0


async def test_a_message_left_by_an_outage_is_read_again_as_the_database_answers_not_after_a_rest(
    database: Database, db_dsn: str, db: Conn
) -> None:
    """The handler meets the outage, and so does the read that would hand its message back; the database answers
    the idle consumer's question of when to wake next (CI: it answered again in between), which names the
    message's visibility timeout. The consumer does not rest that long: no notification tells it the database is
    back, so it reads again at its poll interval, hands the message back and handles it."""
    started: list[float] = []

    async def handle(message: Message) -> None:
        started.append(time.monotonic())
        if len(started) == 1:
            raise DatabaseUnavailable

    worker = consumer(database, db_dsn, handle, poll_interval=0.1, visibility_seconds=30, idle_poll_interval=30.0)
    read = worker.reader
    failed_reads: list[int] = []

    async def read_meeting_the_outage(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        # The outage lasts two reads: the second comes once the handler's slot is free, as the consumer is idle.
        if worker._cut_short.stranded and len(failed_reads) < 2:
            failed_reads.append(qty)
            raise DatabaseUnavailable  # rolls back the hand-back sent before it in the same pipeline
        return await read(conn, vt, qty)

    worker.reader = read_meeting_the_outage
    async with running(worker):
        await asyncio.wait_for(worker.listening.wait(), 5)
        send(db, {"n": 1})
        await until(lambda: len(archived(db)) == 1, within=20)
    assert len(failed_reads) == 2, "the hand-back's reads met the outage"
    assert len(started) == 2
    assert started[1] - started[0] < 5, "handled again within a few polls, not after the 30 s rest"
    assert archived(db)[0]["read_ct"] == 2


async def test_a_consumer_takes_no_more_messages_than_its_pool_has_connections_for(db_dsn: str, db: Conn) -> None:
    small_pool = create_pool(
        db_dsn, settings_from_env({"VOICEGATE_DB_POOL_MIN": "1", "VOICEGATE_DB_POOL_MAX": "2"}).pool_limits
    )
    await small_pool.open(wait=True)
    small = Database(small_pool)
    active = 0
    peak = 0
    release = asyncio.Event()

    async def handle(_: Message) -> None:
        nonlocal active, peak
        async with small.service_transaction(budget=30) as conn:  # the work holds its connection throughout
            await conn.execute("select 1")
            active += 1
            peak = max(peak, active)
            await asyncio.wait_for(release.wait(), RELEASE_SECONDS)
            active -= 1

    for n in range(5):
        send(db, {"n": n})
    try:
        async with running(consumer(small, None, handle, poll_interval=0.05, concurrency=10, batch_size=10)):
            await until(lambda: active == 2)
            # Polls meanwhile find free slots but no connection to spare: nothing more is read.
            await asyncio.sleep(0.3)
            assert [r["read_ct"] for r in queued(db)].count(1) == 2
            release.set()
            await until(lambda: len(archived(db)) == 5)
        assert peak == 2
        assert dead_letters(db) == []
    finally:
        await small_pool.close()


async def test_a_storage_outage_hands_the_message_back_uncounted(database: Database, db: Conn) -> None:
    deliveries: list[tuple[int, int]] = []

    async def handle(message: Message) -> None:
        deliveries.append((message.msg_id, message.read_ct))
        if len(deliveries) <= 3:
            raise StorageUnavailable  # two would be its max, were they counted

    original = send(db, {"n": 1})
    async with running(consumer(database, None, handle, poll_interval=0.05, max_reads=2)):
        await until(lambda: len(archived(db)) == 4)
    # Each time sent anew (another consumer reading it counts nothing either) and archived.
    assert [read_ct for _, read_ct in deliveries] == [1, 1, 1, 1]
    assert deliveries[0][0] == original
    assert len({msg_id for msg_id, _ in deliveries}) == 4
    assert queued(db) == []
    assert dead_letters(db) == []
    assert one(db, "select count(*) as n from voicegate.queue_message_errors")["n"] == 0


def storage_waits_reported(queue: str = QUEUE) -> float:
    """The metric: messages of `queue` reported for waiting out Storage past their bound, so far."""
    return REGISTRY.get_sample_value("voicegate_queue_storage_wait_exceeded_total", {"queue": queue}) or 0.0


def storage_wait_audits(db: Conn) -> list[dict[str, Any]]:
    with db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "select actor, subject_type, subject_id, detail from voicegate.audit_events"
            " where action = 'queue.storage_wait_exceeded' order by id"
        ).fetchall()


async def test_a_message_handed_back_for_storage_keeps_when_its_wait_began(database: Database, db: Conn) -> None:
    waits: list[dict[str, Any] | None] = []

    async def handle(message: Message) -> None:
        waits.append(message.message.get("storageWait"))
        if len(waits) <= 3:
            raise StorageUnavailable

    send(db, {"n": 1})
    reported = storage_waits_reported()
    async with running(consumer(database, None, handle, poll_interval=0.05, max_reads=2)):
        await until(lambda: len(archived(db)) == 4)
    # The first delivery began the wait; each one handed back after carries that beginning, not its own.
    assert waits[0] is None
    assert waits[1] is not None
    assert waits[1] == waits[2] == waits[3] == {"since": waits[1]["since"], "reported": False}
    assert datetime.fromisoformat(waits[1]["since"]) > datetime.now(UTC) - timedelta(minutes=1)
    # Within the default bound (an hour) nothing is reported or counted.
    assert storage_waits_reported() == reported
    assert storage_wait_audits(db) == []
    assert dead_letters(db) == []


async def test_a_message_that_waited_out_storage_past_its_bound_is_reported_once_then_dead_lettered(
    database: Database, db: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    deliveries: list[tuple[int, int]] = []

    async def handle(message: Message) -> None:
        deliveries.append((message.msg_id, message.read_ct))
        raise StorageUnavailable  # Storage never comes back for this message

    hooked: list[tuple[str, str]] = []

    async def on_dead(conn: Connection, message: Message, code: str, reason: str) -> None:
        hooked.append((code, reason))

    original = send(db, {"n": 1})
    reported = storage_waits_reported()
    config = ConsumerConfig(queue=QUEUE, poll_interval=0.05, max_reads=2, storage_wait_seconds=0.5)
    worker = QueueConsumer(database, config, handle, listen_dsn=None, on_dead_letter=on_dead)
    with caplog.at_level(logging.ERROR, logger="queue_consumers.storage_wait"):
        async with running(worker):
            await until(lambda: len(dead_letters(db)) == 1, within=30)

    # Handed back uncounted (each time a new message) until past the bound; reported, and sent once more;
    # then its deliveries count: two reads of the last message, and a dead letter.
    assert deliveries[0][0] == original
    last = deliveries[-1][0]
    assert [read_ct for msg_id, read_ct in deliveries if msg_id == last] == [1, 2]
    assert all(read_ct == 1 for msg_id, read_ct in deliveries if msg_id != last)
    [letter] = dead_letters(db)
    assert letter["message"] == {"n": 1}, "as its producer sent it, for a replay"
    assert letter["error"]["code"] == "storage_unavailable"
    assert letter["error"]["message"].startswith("storage_unavailable: Storage has been unreachable for this work")
    assert hooked == [("storage_unavailable", letter["error"]["message"].removeprefix("storage_unavailable: "))]

    # Reported once: one audit event, one count, one ERROR line, whatever the deliveries after it.
    [audit] = storage_wait_audits(db)
    assert (audit["actor"], audit["subject_type"]) == ("worker", "queue_message")
    assert audit["detail"]["queue"] == QUEUE
    assert audit["detail"]["message"] == {"n": 1}
    assert audit["detail"]["bound_seconds"] == 0.5
    assert storage_waits_reported() == reported + 1
    lines = [r for r in caplog.records if "waited out Storage" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.ERROR
    assert queued(db) == []


async def test_a_wait_for_storage_begun_before_a_restart_counts_from_its_beginning(
    database: Database, db: Conn
) -> None:
    async def handle(message: Message) -> None:
        raise StorageUnavailable

    # As a worker that stopped left it: handed back two hours ago and not yet reported.
    since = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    send(db, {"n": 1, "storageWait": {"since": since, "reported": False}})
    async with running(consumer(database, None, handle, poll_interval=0.05)):  # bound: the default hour
        await until(lambda: len(storage_wait_audits(db)) == 1)
    [audit] = storage_wait_audits(db)
    assert audit["detail"]["waiting_since"] == datetime.fromisoformat(since).isoformat().replace("+00:00", "Z")
    assert audit["detail"]["waited_seconds"] >= 2 * 3600


async def test_a_failed_dependency_check_takes_nothing_until_its_probe_answers(database: Database, db: Conn) -> None:
    storage = Outage("storage under test")
    answering = False
    probes: list[bool] = []

    async def probe() -> bool:
        probes.append(answering)
        if answering:
            storage.recovered()
        else:
            storage.failed(StorageUnavailable())
        return answering

    handled: list[int] = []

    async def handle(message: Message) -> None:
        handled.append(message.msg_id)

    msg_id = send(db, {"n": 1})
    check = DependencyCheck(storage, probe, every=0.1)
    worker = QueueConsumer(
        database, ConsumerConfig(queue=QUEUE, poll_interval=0.05), handle, listen_dsn=None, dependency=check
    )
    async with running(worker):
        await until(lambda: len(probes) >= 3)  # asked before the first read, then again while it does not answer
        assert handled == []
        assert [row["read_ct"] for row in queued(db)] == [0], "not even read"
        answering = True
        await until(lambda: len(archived(db)) == 1)
        probed = len(probes)
        send(db, {"n": 2})
        await until(lambda: len(archived(db)) == 2)
    assert handled[0] == msg_id
    assert len(probes) == probed, "while the outage tracker has Storage up, nobody probes"


class Held:
    """A handler that holds each message until the test lets it go, and a reader that notes how many
    messages each read asked for."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.finished: list[int] = []
        self.asked: list[int] = []
        #: The messages each read returned, in order.
        self.returned: list[list[int]] = []
        self._release: dict[int, asyncio.Event] = {}
        self._all = False

    async def handle(self, message: Message) -> None:
        self.started.append(message.msg_id)
        release = self._release.setdefault(message.msg_id, asyncio.Event())
        if not self._all:
            await asyncio.wait_for(release.wait(), RELEASE_SECONDS)
        self.finished.append(message.msg_id)

    def let_go(self, count: int) -> None:
        """Let the first `count` held messages finish."""
        for msg_id in [msg_id for msg_id in self.started if not self._release[msg_id].is_set()][:count]:
            self._release[msg_id].set()

    def let_all_go(self) -> None:
        """Let every message finish, those still to come included."""
        self._all = True
        self.let_go(len(self.started))

    async def read(self, conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        self.asked.append(qty)
        async with conn.cursor() as cur:
            await cur.execute("select * from pgmq.read(%s, %s, %s)", (QUEUE, vt, qty))
            rows = await cur.fetchall()
        self.returned.append([row["msg_id"] for row in rows])
        return rows


@asynccontextmanager
async def four_held(
    database: Database, db: Conn, *, gather_seconds: float, in_step: bool = False
) -> AsyncIterator[Held]:
    """Eight messages queued for a consumer of four slots (and batches of four), the first four held; on
    the way out every message is let go and handled, whether the test failed or not."""
    held = Held()
    for n in range(8):
        send(db, {"n": n})
    # Reading ahead off: these tests count what each read asks for as slots free.
    config = ConsumerConfig(
        queue=QUEUE,
        poll_interval=30.0,
        concurrency=4,
        batch_size=4,
        gather_seconds=gather_seconds,
        read_ahead_seconds=0,
        in_step=in_step,
    )
    async with running(QueueConsumer(database, config, held.handle, listen_dsn=None, reader=held.read)):
        try:
            await until(lambda: len(held.started) == 4)
            yield held
        finally:
            held.let_all_go()
        await until(lambda: len(archived(db)) == 8)


async def test_a_busy_consumer_with_one_slot_free_waits_its_gather_time_before_it_reads(
    database: Database, db: Conn
) -> None:
    async with four_held(database, db, gather_seconds=0.5) as held:
        released = time.monotonic()
        held.let_go(1)
        await until(lambda: len(held.started) == 5)
        # One slot of four is less than half the batch: the read waited for more to be free, then took one.
        assert time.monotonic() - released >= 0.45
        assert held.asked == [4, 1]


async def test_a_busy_consumer_reads_at_once_when_half_its_batch_is_free(database: Database, db: Conn) -> None:
    async with four_held(database, db, gather_seconds=60.0) as held:
        held.let_go(2)
        # Long before the minute of gathering is up, the two free slots are read for together.
        await until(lambda: len(held.started) == 6)
        assert held.asked == [4, 2]


async def test_a_consumer_in_step_reads_when_its_whole_batch_is_free(database: Database, db: Conn) -> None:
    async with four_held(database, db, gather_seconds=60.0, in_step=True) as held:
        held.let_go(2)
        await until(lambda: len(held.finished) == 2)
        # Half its batch is free, which a consumer out of step reads for at once; this one waits for the rest, so
        # that the next four start together (and their grouped statements go together).
        assert (held.asked, len(held.started)) == ([4], 4)
        held.let_go(2)
        await until(lambda: len(held.started) == 8)
        assert held.asked == [4, 4]


def in_hand(db: Conn) -> int:
    """Messages read and still invisible (held by the consumer, started or not)."""
    return int(one(db, f"select count(*) as n from pgmq.q_{QUEUE} where read_ct > 0 and vt > now()")["n"])


async def test_quick_handlers_are_read_ahead_and_a_freed_slot_takes_the_next_without_a_read(
    database: Database, db: Conn
) -> None:
    held = Held()
    for n in range(10):
        send(db, {"n": n})
    config = ConsumerConfig(
        queue=QUEUE, poll_interval=30.0, concurrency=2, batch_size=4, gather_seconds=60.0, read_ahead_seconds=60.0
    )
    async with running(QueueConsumer(database, config, held.handle, listen_dsn=None, reader=held.read)):
        try:
            await until(lambda: len(held.started) == 2)
            # No handler has finished yet, so nothing tells how quick they are: only the free slots are read.
            assert held.asked == [2]
            held.let_go(1)
            # One finished, well within the read-ahead time: a batch is held beyond the two slots.
            await until(lambda: in_hand(db) == 2 + 4)
            assert len(held.started) == 3
            reads = len(held.returned)
            held.let_go(1)
            await until(lambda: len(held.started) == 4)
            # The slot that freed took a message read before it freed, not one a read made for it.
            assert held.started[3] in {msg_id for ids in held.returned[:reads] for msg_id in ids}
        finally:
            held.let_all_go()
        await until(lambda: len(archived(db)) == 10)
    assert sorted(held.started) == sorted(row["msg_id"] for row in archived(db))
    assert all(row["read_ct"] == 1 for row in archived(db))


async def test_slow_handlers_leave_nothing_read_and_unstarted(database: Database, db: Conn) -> None:
    finished = 0
    most_in_hand = 0

    async def handle(_: Message) -> None:
        nonlocal finished
        await asyncio.sleep(0.2)  # the handler's own work: a slow provider's answer
        finished += 1

    async def read(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        nonlocal most_in_hand
        async with conn.cursor() as cur:
            await cur.execute("select * from pgmq.read(%s, %s, %s)", (QUEUE, vt, qty))
            rows = await cur.fetchall()
        taken.extend(row["msg_id"] for row in rows)
        most_in_hand = max(most_in_hand, len(taken) - finished)
        return rows

    taken: list[int] = []
    for n in range(6):
        send(db, {"n": n})
    # 0.2 s a handler: two slots finish less than one message in 50 ms of reading ahead.
    config = ConsumerConfig(queue=QUEUE, poll_interval=0.05, concurrency=2, batch_size=4, read_ahead_seconds=0.05)
    async with running(QueueConsumer(database, config, handle, listen_dsn=None, reader=read)):
        await until(lambda: len(archived(db)) == 6)
    assert most_in_hand == 2


async def test_a_message_read_ahead_stays_invisible_while_it_waits_for_a_slot(database: Database, db: Conn) -> None:
    held = Held()
    for n in range(3):
        send(db, {"n": n})
    config = ConsumerConfig(
        queue=QUEUE,
        poll_interval=30.0,
        visibility_seconds=1,
        concurrency=1,
        batch_size=2,
        gather_seconds=60.0,
        read_ahead_seconds=60.0,
    )
    async with running(QueueConsumer(database, config, held.handle, listen_dsn=None, reader=held.read)):
        try:
            await until(lambda: len(held.started) == 1)
            held.let_go(1)
            await until(lambda: len(held.started) == 2 and in_hand(db) == 2)
            [waiting] = [row for row in queued(db) if row["read_ct"] == 1 and row["msg_id"] not in held.started]
            # Past two visibility timeouts behind the held handler, the message read for later is still
            # invisible: nobody else could take it.
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                [row] = [row for row in queued(db) if row["msg_id"] == waiting["msg_id"]]
                assert (row["read_ct"], row["vt"] > datetime.now(UTC)) == (1, True)
                await asyncio.sleep(0.1)
            held.let_go(1)
            await until(lambda: len(held.started) == 3)
            assert held.started[2] == waiting["msg_id"]
        finally:
            held.let_all_go()
        await until(lambda: len(archived(db)) == 3)
    assert all(row["read_ct"] == 1 for row in archived(db))
