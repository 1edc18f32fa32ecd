"""A hung database (every process of its server stopped with SIGSTOP) as the pool and the consumers meet
it: each unit of database work fails with DatabaseUnavailable by its deadline, the units of one request
together within its one budget, cut connections are discarded rather than pooled, the outage is logged
once, a consumer neither dies nor counts it as a failed delivery nor handles a message twice, and
everything heals after SIGCONT."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import select
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from backend.db.connection import Connection
from backend.db.deadline import request_budget
from backend.db.migrate import migrate
from backend.db.pool import Pool, create_pool, create_worker_pool
from backend.db.units import Database
from backend.errors import DatabaseUnavailable, StorageUnavailable
from backend.queues import Message
from backend.settings import Settings
from devkit.db import create_user
from queue_consumers.runtime import ConsumerConfig, QueueConsumer
from standins.postgres import EmbeddedPostgres
from tests.conftest import server_dir, start_test_server
from tests.support import frozen

DEADLINE = 0.5
SETTINGS = Settings(db_timeout=DEADLINE, db_connect_timeout=0.4, db_pool_min=2, db_pool_max=4)
QUEUE = "voice_synthesis"
#: What a loaded 2-core machine may add to a deadline before its failure is seen (CI saw 0.43 s); a unit that did not
#: keep its deadline would hang for the whole WAIT_SECONDS.
SLACK = 1.0
#: Longest wait for anything a test waits on that is not a deadline under test.
WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    """A migrated server of this module's own: freezing it must not stop anyone else's tests."""
    with server_dir("hang") as root:
        pg = start_test_server(root)
        try:
            migrate(pg.dsn)
            yield pg
        finally:
            pg.remove()


@asynccontextmanager
async def opened(pool: Pool) -> AsyncIterator[Database]:
    """The database behind `pool`, open for the block, with a connection idle in it."""
    await pool.open(wait=True)
    try:
        database = Database(pool)
        await database.ping()  # also ends any outage an earlier test left the process-wide log in
        yield database
    finally:
        await pool.close()


@pytest.fixture
async def database(server: EmbeddedPostgres) -> AsyncIterator[Database]:
    async with opened(create_pool(server.dsn, SETTINGS.pool_limits)) as each:
        yield each


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "backend.outages"]


async def healed(database: Database, within: float = 10.0) -> float:
    """Seconds until a ping succeeds again."""
    started = time.monotonic()
    while True:
        try:
            await database.ping()
        except DatabaseUnavailable:
            assert time.monotonic() - started < within, "the pool did not heal"
            await asyncio.sleep(0.05)
        else:
            return time.monotonic() - started


async def test_every_unit_fails_by_its_deadline_and_the_pool_heals(
    server: EmbeddedPostgres, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    inside, go = asyncio.Event(), asyncio.Event()

    async def in_flight() -> None:
        async with database.service_transaction() as conn:
            await conn.execute("select 1")
            inside.set()
            await asyncio.wait_for(go.wait(), WAIT_SECONDS)
            await conn.execute("select 2")  # sent to a server that no longer answers

    async def timed_ping() -> float:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            await database.ping()
        return time.monotonic() - started

    transaction = asyncio.create_task(in_flight())
    await asyncio.wait_for(inside.wait(), WAIT_SECONDS)
    with frozen(server.data_dir):
        started = time.monotonic()
        go.set()
        # One ping takes the idle connection and hangs on its check; the rest wait for the pool.
        pings = await asyncio.gather(*(timed_ping() for _ in range(6)))
        with pytest.raises(DatabaseUnavailable):
            await asyncio.wait_for(transaction, WAIT_SECONDS)
        assert time.monotonic() - started < DEADLINE + SLACK
        assert max(pings) < DEADLINE + SLACK
        cut = database.pool.get_stats().get("returns_bad", 0)
        assert cut >= 2, "the connections cut at their deadline were discarded, not pooled"
    assert await healed(database) < 5

    # Seven failures, two kinds of cause (a check cut at its deadline, no connection in time): a line
    # with a traceback for each kind, then one as it ends.
    lines = outage_lines(caplog)
    assert [level for level, _ in lines] == [logging.ERROR, logging.ERROR, logging.WARNING], lines
    assert lines[0][1].startswith("database unavailable: ")
    assert lines[1][1].startswith("database still unavailable, now: ")
    recovered = re.fullmatch(r"database available again after (\d+) failed requests over [\d.]+ s", lines[2][1])
    assert recovered is not None
    assert int(recovered[1]) >= 7
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "backend.outages"]


async def test_a_service_statement_fails_by_its_deadline_on_either_kind_of_pool(
    server: EmbeddedPostgres, database: Database
) -> None:
    async with opened(
        create_worker_pool(server.dsn, SETTINGS.pool_limits, patience=SETTINGS.queue_visibility_seconds)
    ) as worker:
        for each in (database, worker):
            async with each.service_statement() as conn:
                await conn.execute("select 1")  # a connection is open and idle in the pool
            with frozen(server.data_dir):
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailable):
                    async with each.service_statement() as conn:
                        await conn.execute("select 1")
                assert time.monotonic() - started < DEADLINE + SLACK
            assert await healed(each) < 5


async def test_a_service_pipeline_fails_by_its_deadline_with_its_own_error_alone(
    server: EmbeddedPostgres, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    queued = "select count(*) from pgmq.q_voice_synthesis"
    async with database.service_pipeline() as conn:
        before = await (await conn.execute(queued)).fetchone()  # a connection is open and idle in the pool
    with frozen(server.data_dir):
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):  # noqa: PT012 - the unit's fetch is what waits
            async with database.service_pipeline() as conn:
                await conn.execute("select pgmq.send(%s, '{}'::jsonb)", (QUEUE,))
                await (await conn.execute("select 1")).fetchone()
        assert time.monotonic() - started < DEADLINE + SLACK
    assert await healed(database) < 5
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []
    with psycopg.connect(server.dsn, autocommit=True, row_factory=dict_row) as admin:
        assert admin.execute(queued).fetchone() == before, "the send was rolled back with the unit"


async def test_a_requests_units_fail_within_its_one_budget_on_a_hung_database(
    server: EmbeddedPostgres, database: Database
) -> None:
    # The Storage stand-in's pool, which a request reaches in-process: its units share the request's budget.
    async with opened(create_pool(server.dsn, SETTINGS.pool_limits)) as stand_in:
        with frozen(server.data_dir), request_budget(DEADLINE):
            started = time.monotonic()
            for each in (database, stand_in, database):  # the write, the stand-in's cleanup, the key's release
                with pytest.raises(DatabaseUnavailable):
                    async with each.service_transaction(budget=DEADLINE / 2 if each is database else None) as conn:
                        await conn.execute("select 1")
            # The first waited its own deadline (half the request's budget), the second what was left of
            # the budget, the third nothing: together the one budget, not a deadline each (twice as long).
            assert DEADLINE - 0.05 < time.monotonic() - started < DEADLINE + SLACK
        assert await healed(database) < 5
        assert await healed(stand_in) < 5


async def test_a_request_that_gets_answers_waits_as_long_as_each_unit_may(database: Database) -> None:
    # The budget counts waits on a database that does not answer: slow answers (each well within its
    # unit's deadline, together past the request's budget) are not an outage.
    with request_budget(DEADLINE):
        for _ in range(3):
            async with database.service_transaction() as conn:
                row = await (await conn.execute("select 1 as n from pg_sleep(%s)", (DEADLINE * 0.6,))).fetchone()
            assert row == {"n": 1}


async def test_the_server_holds_each_transaction_to_the_deadline(server: EmbeddedPostgres, database: Database) -> None:
    limits = (
        "select current_setting('statement_timeout') as statement,"
        " current_setting('idle_in_transaction_session_timeout') as idle"
    )
    # A statement is held to the deadline; a transaction left idle to five times it (the process may be
    # busy between statements without having vanished).
    async with database.service_transaction() as conn:
        assert await (await conn.execute(limits)).fetchone() == {"statement": "500ms", "idle": "2500ms"}
    async with database.service_transaction(budget=2.5) as conn:
        assert await (await conn.execute(limits)).fetchone() == {"statement": "2500ms", "idle": "12500ms"}
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        user = create_user(admin)
    async with database.user_transaction({"sub": str(user), "role": "authenticated"}) as conn:
        assert await (await conn.execute(limits)).fetchone() == {"statement": "500ms", "idle": "2500ms"}
    # A statement that outlasts it fails as an outage would, and the next unit works.
    with pytest.raises(DatabaseUnavailable):
        async with database.service_transaction() as conn:
            await conn.execute("select pg_sleep(3)")
    await database.ping()


async def test_work_between_statements_past_the_deadline_is_not_a_hang(database: Database) -> None:
    # The deadline is the server's to meet: a unit whose process works (or awaits something else) between
    # statements for longer still commits, whether the event loop stays free or is blocked meanwhile.
    async with database.service_transaction() as conn:
        await conn.execute("select 1")
        await asyncio.sleep(DEADLINE * 1.5)
        time.sleep(DEADLINE * 1.5)  # noqa: ASYNC251 - the process busy, as under a burst
        row = await (await conn.execute("select 2 as n")).fetchone()
    assert row == {"n": 2}
    assert database.pool.get_stats().get("returns_bad", 0) == 0


async def test_an_answer_the_busy_process_has_not_read_yet_is_not_a_hang(database: Database) -> None:
    async with database.service_transaction() as conn:
        # The unit's first statement goes in a pipeline with its opening, whose waits psycopg may finish
        # without ever yielding to the loop (it polls a writable socket and reads an answer already
        # there), so `waiting_since` could come and go unseen. A later statement goes alone: psycopg
        # awaits its answer on the loop, and the task is suspended with `waiting_since` set.
        await conn.execute("select 1")
        query = asyncio.create_task(conn.execute("select 2 as n"))
        await until(lambda: conn.waiting_since is not None or query.done(), poll=0)
        assert not query.done(), "the statement was answered without its wait being seen"
        poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN)
        assert poller.poll(5000), "the server answered"  # the event loop is blocked from here ...
        time.sleep(DEADLINE * 1.5)  # noqa: ASYNC251 - ... past the deadline, the answer unread
        row = await (await query).fetchone()
    assert row == {"n": 2}
    assert database.pool.get_stats().get("returns_bad", 0) == 0


def send(server: EmbeddedPostgres, body: dict[str, Any]) -> int:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute("select pgmq.send(%s, %s::jsonb)", (QUEUE, json.dumps(body))).fetchone()
    assert row is not None
    return int(row[0])


def message_state(server: EmbeddedPostgres, msg_id: int) -> dict[str, Any]:
    with psycopg.connect(server.dsn, autocommit=True, row_factory=dict_row) as conn:
        archived = conn.execute(f"select read_ct from pgmq.a_{QUEUE} where msg_id = %s", (msg_id,)).fetchone()
        errors = conn.execute(
            "select count(*) as n from voicegate.queue_message_errors where msg_id = %s", (msg_id,)
        ).fetchone()
        dead = conn.execute("select count(*) as n from pgmq.q_voice_dead_letter").fetchone()
    assert errors is not None
    assert dead is not None
    return {"archived": archived, "errors": errors["n"], "dead": dead["n"]}


async def test_a_consumer_rides_out_a_hang_without_failing_or_repeating_a_message(
    server: EmbeddedPostgres, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    started: list[int] = []
    done: list[int] = []
    holding, release, hung = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handle(message: Message) -> None:
        started.append(message.msg_id)
        if message.message["n"] == 1:
            # Provider work, say: it outlives the hang and finishes after it.
            holding.set()
            await asyncio.wait_for(release.wait(), WAIT_SECONDS)
        else:
            await asyncio.wait_for(hung.wait(), WAIT_SECONDS)
            async with database.service_transaction() as conn:  # fails by its deadline the first time
                await conn.execute("select 1")
        done.append(message.msg_id)

    held, waiting = send(server, {"n": 1}), send(server, {"n": 2})
    config = ConsumerConfig(queue=QUEUE, visibility_seconds=1, poll_interval=0.05, max_reads=2)
    consumer = QueueConsumer(database, config, handle, listen_dsn=None)
    stopping = asyncio.Event()
    running = asyncio.create_task(consumer.run(stopping))
    try:
        await asyncio.wait_for(holding.wait(), 10)
        await until(lambda: waiting in started)
        with frozen(server.data_dir):
            hung.set()
            await asyncio.sleep(2.5)  # longer than the visibility timeout neither message could extend
            assert not running.done(), "the consumer must not die of a hung database"
        await healed(database)
        await until(lambda: waiting in done)  # delivered again once visible, and handled
        # Whether a poll reads the held message before its extension gets through after a hang is a
        # race; make it visible, as a longer hang would leave it, and give the polls time to see it.
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("select pgmq.set_vt(%s, %s, 0)", (QUEUE, held))
        await asyncio.sleep(0.5)
        release.set()
        await until(lambda: message_state(server, held)["archived"] is not None)
        await until(lambda: message_state(server, waiting)["archived"] is not None)
    finally:
        release.set()
        hung.set()
        stopping.set()
        await asyncio.wait_for(running, 10)
    assert started.count(held) == 1, "a message held through the hang is not handled a second time beside it"
    assert started.count(waiting) == 2
    assert sorted(done) == sorted([held, waiting])
    for msg_id in (held, waiting):
        state = message_state(server, msg_id)
        assert (state["errors"], state["dead"]) == (0, 0), "waiting out a hang is not a failed delivery"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("queue_consumers")]


async def test_a_message_whose_handler_met_the_hang_is_handled_again_as_soon_as_the_database_answers(
    server: EmbeddedPostgres, database: Database
) -> None:
    visibility = 30
    started: list[float] = []
    done: list[int] = []
    hung = asyncio.Event()

    async def handle(message: Message) -> None:
        started.append(time.monotonic())
        if len(started) == 1:
            await asyncio.wait_for(hung.wait(), WAIT_SECONDS)
        async with database.service_transaction() as conn:  # the first delivery's fails by its deadline
            await conn.execute("select 1")
        done.append(message.msg_id)

    msg_id = send(server, {"n": 1})
    config = ConsumerConfig(queue=QUEUE, visibility_seconds=visibility, poll_interval=0.05)
    consumer = QueueConsumer(database, config, handle, listen_dsn=None)
    stopping = asyncio.Event()
    running = asyncio.create_task(consumer.run(stopping))
    try:
        await until(lambda: len(started) == 1)
        with frozen(server.data_dir):
            hung.set()
            await asyncio.sleep(DEADLINE * 3)  # the handler's transaction fails by its deadline meanwhile
        answered = time.monotonic() + await healed(database)
        await until(lambda: msg_id in done)
    finally:
        hung.set()
        stopping.set()
        await asyncio.wait_for(running, 10)
    assert len(started) == 2
    # Its visibility timeout has most of its 30 s left: the redelivery came with the database, not after it.
    assert started[1] - answered < 3, started[1] - answered
    state = message_state(server, msg_id)
    assert state["archived"] is not None
    assert (state["errors"], state["dead"]) == (0, 0), "waiting out an outage is not a failed delivery"


@pytest.mark.parametrize(
    "met",
    [StorageUnavailable(), RuntimeError("the outage, in other words")],
    ids=["storage_down_with_its_database", "failed"],
)
async def test_a_message_whose_hand_back_met_the_hang_is_handled_again_as_soon_as_the_database_answers(
    server: EmbeddedPostgres, database: Database, met: Exception
) -> None:
    """The handler fails without the database (Storage, whose own database is the one hung, is down; or
    any failure), so what the consumer does next (hand it back for Storage, schedule its backoff) meets the
    hang: the message still comes with the database, not its visibility timeout later."""
    visibility = 30
    started: list[float] = []
    done: list[int] = []
    hung = asyncio.Event()

    async def handle(message: Message) -> None:
        started.append(time.monotonic())
        if len(started) == 1:
            await asyncio.wait_for(hung.wait(), WAIT_SECONDS)
            raise met
        done.append(message.msg_id)

    msg_id = send(server, {"n": 1})
    config = ConsumerConfig(queue=QUEUE, visibility_seconds=visibility, poll_interval=0.05)
    consumer = QueueConsumer(database, config, handle, listen_dsn=None)
    stopping = asyncio.Event()
    running = asyncio.create_task(consumer.run(stopping))
    try:
        await until(lambda: len(started) == 1)
        with frozen(server.data_dir):
            hung.set()
            await asyncio.sleep(DEADLINE * 3)  # the hand-back or backoff fails by its deadline meanwhile
        answered = time.monotonic() + await healed(database)
        await until(lambda: msg_id in done)
    finally:
        hung.set()
        stopping.set()
        await asyncio.wait_for(running, 10)
    assert len(started) == 2
    assert started[1] - answered < 3, started[1] - answered
    state = message_state(server, msg_id)
    assert state["archived"] is not None
    assert (state["errors"], state["dead"]) == (0, 0), "its failure could not be recorded: the database was out"


async def test_a_read_whose_commit_met_the_hang_hands_its_messages_back_as_the_database_answers(
    server: EmbeddedPostgres, database: Database
) -> None:
    """The read's rows come, then the database hangs before it answers the read's commit (CI: the page's
    job, read as Postgres stopped, waited its 30 s). The server commits the read as it resumes, so its
    messages would stay invisible for their visibility timeout with nobody holding them: they are handed
    back as the database answers, and that delivery, which nobody handled, is not counted."""
    started: list[float] = []
    done: list[int] = []

    async def handle(message: Message) -> None:
        started.append(time.monotonic())
        done.append(message.msg_id)

    msg_id = send(server, {"n": 1})
    # One delivery allowed: counting the lost one would dead-letter the message when it comes again.
    config = ConsumerConfig(queue=QUEUE, visibility_seconds=30, poll_interval=0.05, max_reads=1)
    consumer = QueueConsumer(database, config, handle, listen_dsn=None)
    read = consumer.reader
    hang = contextlib.ExitStack()

    async def read_then_hang(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        rows = await read(conn, vt, qty)
        if rows:  # the rows are in; the commit is sent as the pipeline ends, to a stopped server
            hang.enter_context(frozen(server.data_dir))
        return rows

    consumer.reader = read_then_hang
    with hang:
        assert await consumer._read_and_start(1) == 0, "the read's outcome is unknown: nothing is started"
    consumer.reader = read
    answered = time.monotonic() + await healed(database)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute(
            f"select read_ct, vt > now() + interval '20 s' from pgmq.q_{QUEUE} where msg_id = %s", (msg_id,)
        ).fetchone()
    assert row == (1, True), "the server committed the read whose answer was lost"
    stopping = asyncio.Event()
    running = asyncio.create_task(consumer.run(stopping))
    try:
        await until(lambda: msg_id in done)
    finally:
        stopping.set()
        await asyncio.wait_for(running, 10)
    assert started[0] - answered < 3, started[0] - answered
    state = message_state(server, msg_id)
    assert state["archived"] == {"read_ct": 2}
    assert (state["errors"], state["dead"]) == (0, 0), "a delivery nobody handled is not a failed one"


def test_release_messages_hands_back_only_the_delivery_it_names_while_it_is_invisible(server: EmbeddedPostgres) -> None:
    held, visible = send(server, {"n": 1}), send(server, {"n": 2})
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        read = conn.execute("select msg_id, read_ct from pgmq.read(%s, 30, 2) order by msg_id", (QUEUE,)).fetchall()
        assert read == [(held, 1), (visible, 1)]
        conn.execute("select pgmq.set_vt(%s, %s, 0)", (QUEUE, visible))
        conn.execute("set role service_role")

        def release(msg_ids: list[int], read_cts: list[int]) -> list[int]:
            rows = conn.execute(
                "select * from voicegate.release_messages(%s, %s, %s)", (QUEUE, msg_ids, read_cts)
            ).fetchall()
            return sorted(row[0] for row in rows)

        assert release([held], [0]) == [], "somebody has read it since the delivery named"
        assert release([visible], [1]) == [], "already visible"
        assert release([held, visible], [1, 1]) == [held]
        again = conn.execute("select msg_id, read_ct from pgmq.read(%s, 30, 2) order by msg_id", (QUEUE,)).fetchall()
        assert again == [(held, 2), (visible, 2)]
        conn.execute("select pgmq.delete(%s, %s::bigint[])", (QUEUE, [held, visible]))


async def until(condition: Callable[[], bool], within: float = 10.0, poll: float = 0.05) -> None:
    """Wait for `condition`, yielding to the loop between looks; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(poll)


async def test_a_database_outage_is_logged_once_as_it_starts_and_once_as_it_ends_by_the_consumers(
    server: EmbeddedPostgres, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def handle(_: Message) -> None:
        return None

    queues = ["voice_clone_process", "voice_preview", "voice_synthesis", "voice_sample_process", "webhook_delivery"]
    consumers = [
        QueueConsumer(database, ConsumerConfig(queue=queue, poll_interval=0.2), handle, listen_dsn=server.dsn)
        for queue in queues
    ]
    stopping = asyncio.Event()
    running = [asyncio.create_task(consumer.run(stopping)) for consumer in consumers]
    try:
        await until(lambda: all(c.listening.is_set() for c in consumers))
        server.stop(mode="immediate")
        try:
            await until(lambda: not any(c.listening.is_set() for c in consumers))
            # Down for several seconds: listeners retry (up to 5 s apart) and polls fail meanwhile.
            await asyncio.sleep(6)
            assert not any(task.done() for task in running), "no consumer dies of it"
        finally:
            server.ensure_running()
        await until(lambda: all(c.listening.is_set() for c in consumers), within=15)
        await healed(database)
    finally:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*running), 10)

    messages = [message for _, message in outage_lines(caplog)]
    assert len([m for m in messages if m.startswith("database unavailable: ")]) == 1, messages
    assert len([m for m in messages if m.startswith("database available again after ")]) == 1, messages
    noise = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name != "backend.outages"]
    assert noise == [], "the consumers log nothing of their own about the outage"


async def test_a_pool_whose_connections_a_restart_cut_has_them_again_within_a_second_of_the_server(
    server: EmbeddedPostgres,
) -> None:
    """Every connection cut by the server's going away for 3 s (psycopg would wait 1, 2, then 4 s between
    attempts to connect again: up to 4 s past the server's return, with no connection to hand out), and a pool
    that cannot grow past them: a ping answers within a second of the server's start."""
    fixed = create_pool(server.dsn, Settings(db_pool_min=2, db_pool_max=2, db_connect_timeout=0.4).pool_limits)
    async with opened(fixed) as database:
        server.stop(mode="immediate")
        try:
            down_since = time.monotonic()
            while time.monotonic() - down_since < 3:  # what the pool's retries meet meanwhile: refusals
                with pytest.raises(DatabaseUnavailable):
                    await database.ping()
        finally:
            server.ensure_running()
        assert await healed(database) < 1.0
