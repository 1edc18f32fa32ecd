"""Deliveries held per endpoint (VOICEGATE_WEBHOOK_PENDING): an endpoint holds at most the bound in
`webhook_delivery`, whoever writes its events and however many at once; its oldest go to the dead letters
with an audit event as newer events come; and one user's dead endpoints, refusing or hanging, do not hold up another
user's deliveries: the queue is read in turn by user, and a user holds at most their share of the slots."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from backend import queues
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db.pool import create_pool
from backend.db.units import Database
from backend.queues import Turns
from backend.settings import Settings
from backend.standard_webhooks.signing import new_secret
from backend.webhooks import step as webhook_step
from devkit.db import Conn, create_user, one, seed_consent
from queue_consumers.handlers import Retries, queue_routes
from queue_consumers.runtime import ConsumerConfig, QueueConsumer
from tests.e2e.receiver import receiving
from tests.integration.conftest import open_lifecycle
from tests.support import silent_port

EVENT = "sample.ready"
#: The workers' defaults (VOICEGATE_WEBHOOK_MAX_ATTEMPTS, VOICEGATE_WEBHOOK_RETRY_BASE_SECONDS).
RETRIES = Retries(max_reads=15, backoff_base=5.0, backoff_max=6 * 3600.0)


def endpoint(db: Conn, owner: uuid.UUID, url: str = "https://hooks.example.com/x") -> uuid.UUID:
    """An endpoint of `owner` for every event, with its secret (as POST /v1/webhooks stores them)."""
    made: uuid.UUID = one(
        db,
        "insert into webhook_endpoints (owner_id, url, events) values (%s, %s, %s) returning id",
        (owner, url, [EVENT]),
    )["id"]
    db.execute("insert into voicegate.webhook_secrets (endpoint_id, secret) values (%s, %s)", (made, new_secret()))
    return made


def emit(conn: Conn, owner: uuid.UUID, n: int) -> None:
    """One event of `owner`'s, as every trigger writes one."""
    conn.execute("select voicegate.emit_webhook(%s, %s, %s::jsonb)", (EVENT, owner, json.dumps({"n": n})))


def declare(db_dsn: str, *, pending: int, configured: bool = False) -> None:
    """What each worker's maintenance sweep says (VOICEGATE_WEBHOOK_PENDING, VOICEGATE_WEBHOOK_URL)."""

    async def run() -> None:
        pool = create_pool(db_dsn, Settings().pool_limits)
        await pool.open(wait=True)
        try:
            async with Database(pool).service_transaction() as conn:
                await webhook_step.declare_project_endpoint(conn, configured=configured, pending=pending)
        finally:
            await pool.close()

    asyncio.run(run())


def pending(db: Conn, target: uuid.UUID) -> list[dict[str, Any]]:
    """The deliveries `target` holds in the queue, oldest first."""
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select msg_id, message from pgmq.q_webhook_delivery where message ->> 'endpointId' = %s order by msg_id",
            (str(target),),
        ).fetchall()


def dead_letters(db: Conn, target: uuid.UUID) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select message from pgmq.q_voice_dead_letter where message -> 'message' ->> 'endpointId' = %s"
            " order by msg_id",
            (str(target),),
        ).fetchall()
    return [row["message"] for row in rows]


def audits(db: Conn, target: uuid.UUID) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select actor, action, subject_type, detail from voicegate.audit_events where subject_id = %s order by id",
            (str(target),),
        ).fetchall()


def test_a_dead_endpoint_holds_the_bound_and_its_oldest_are_dead_lettered_with_an_audit_event(
    db: Conn, db_dsn: str
) -> None:
    declare(db_dsn, pending=5, configured=True)
    owner, neighbour = create_user(db), create_user(db)
    dead, also_dead, theirs = endpoint(db, owner), endpoint(db, owner), endpoint(db, neighbour)
    for n in range(12):
        emit(db, owner, n)
    emit(db, neighbour, 0)

    for target in (dead, also_dead):
        held = pending(db, target)
        assert [m["message"]["data"]["n"] for m in held] == [7, 8, 9, 10, 11]
        letters = dead_letters(db, target)
        assert [letter["message"]["data"]["n"] for letter in letters] == [0, 1, 2, 3, 4, 5, 6]
        assert {letter["sourceQueue"] for letter in letters} == {"webhook_delivery"}
        assert {letter["error"]["code"] for letter in letters} == {"endpoint_backlog"}
        assert "VOICEGATE_WEBHOOK_PENDING" in letters[0]["error"]["message"]
        recorded = audits(db, target)
        assert len(recorded) == 7  # one per event that made room: a single delivery moved each time
        assert {(r["actor"], r["action"], r["subject_type"]) for r in recorded} == {
            ("webhook_outbox", "webhook.backlog_dead_lettered", "webhook_endpoint")
        }
        assert recorded[0]["detail"]["ownerId"] == str(owner)
        assert (recorded[0]["detail"]["bound"], recorded[0]["detail"]["deadLettered"]) == (5, 1)
        moved = [letter["sourceMsgId"] for letter in letters]
        assert [r["detail"]["msgIds"][0] for r in recorded] == moved
        archived = one(db, "select count(*) as n from pgmq.a_webhook_delivery where msg_id = any(%s)", (moved,))["n"]
        assert archived == 7
    # The project's endpoint (the operator's) and another user's are not bounded by this one's.
    project = one(db, "select count(*) as n from pgmq.q_webhook_delivery where message -> 'endpointId' = 'null'")
    assert project["n"] == 13
    assert len(pending(db, theirs)) == 1
    assert dead_letters(db, theirs) == []


def test_a_lower_bound_trims_an_endpoint_to_it_on_its_next_event_and_keeps_its_kept_error(
    db: Conn, db_dsn: str
) -> None:
    owner = create_user(db)
    target = endpoint(db, owner)
    for n in range(6):
        emit(db, owner, n)
    first = pending(db, target)[0]["msg_id"]
    db.execute(
        "insert into voicegate.queue_message_errors (queue_name, msg_id, read_ct, error)"
        " values ('webhook_delivery', %s, 3, 'DeliveryFailed: HTTP 503')",
        (first,),
    )
    declare(db_dsn, pending=2)

    emit(db, owner, 6)

    assert [m["message"]["data"]["n"] for m in pending(db, target)] == [5, 6]
    letters = dead_letters(db, target)
    assert letters[0]["sourceMsgId"] == first
    assert len(letters) == 5
    assert letters[0]["error"]["message"].endswith("last error: DeliveryFailed: HTTP 503")
    assert audits(db, target)[0]["detail"]["deadLettered"] == 5
    left = one(db, "select count(*) as n from voicegate.queue_message_errors where msg_id = %s", (first,))
    assert left["n"] == 0


def test_a_state_change_makes_room_as_it_announces(db: Conn, db_dsn: str) -> None:
    declare(db_dsn, pending=1)
    owner = create_user(db)
    target = endpoint(db, owner)
    emit(db, owner, 0)
    checked = one(
        db,
        "insert into voice_samples (owner_id, consent_id, object_path, provider, status)"
        " values (%s, %s, %s, 'local', 'processing') returning id",
        (owner, seed_consent(db, owner), f"{owner}/samples/{uuid.uuid4()}/original"),
    )["id"]

    db.execute("update voice_samples set status = 'ready' where id = %s", (checked,))

    assert [m["message"]["data"].get("sampleId") for m in pending(db, target)] == [str(checked)]
    assert [letter["message"]["data"]["n"] for letter in dead_letters(db, target)] == [0]


def test_the_bound_is_exact_under_producers_writing_at_once(db: Conn, db_dsn: str) -> None:
    bound, producers, transactions, per_transaction = 10, 6, 15, 3
    declare(db_dsn, pending=bound)
    owner = create_user(db)
    targets = [endpoint(db, owner) for _ in range(3)]
    start = threading.Barrier(producers, timeout=30)
    failures: list[BaseException] = []
    highest: list[int] = []

    def produce(worker: int) -> None:
        try:
            with psycopg.connect(db_dsn, autocommit=True) as conn:
                start.wait()
                for t in range(transactions):
                    with conn.transaction():
                        for e in range(per_transaction):
                            emit(conn, owner, worker * 1000 + t * 10 + e)
                    highest.append(max(len(pending(conn, target)) for target in targets))
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []

    events = producers * transactions * per_transaction
    assert max(highest) == bound  # no committed state, seen by any producer, ever held more
    for target in targets:
        assert len(pending(db, target)) == bound
        letters = dead_letters(db, target)
        assert len(letters) == events - bound
        # Every event is either held or dead-lettered, once.
        held = {m["message"]["webhookId"] for m in pending(db, target)}
        lettered = {letter["message"]["webhookId"] for letter in letters}
        assert len(held | lettered) == events
        assert not held & lettered


def burst(db_dsn: str, owner: uuid.UUID, events: int) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for n in range(events):
            emit(conn, owner, n)


def failed_once(db: Conn) -> int:
    """Deliveries whose attempt failed (their error kept for a dead letter)."""
    return int(one(db, "select count(*) as n from voicegate.queue_message_errors")["n"])


def untried(db: Conn) -> int:
    """Deliveries not read yet."""
    return int(one(db, "select count(*) as n from pgmq.q_webhook_delivery where read_ct = 0")["n"])


async def until(condition: Callable[[], bool], within: float) -> None:
    """Wait for a condition the consumer makes true (checked every 20 ms)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def webhook_consumer(ctx: WorkerContext, db_dsn: str) -> QueueConsumer:
    """The webhook queue's consumer as a worker runs it (its route, the default eight slots)."""
    route = next(r for r in queue_routes(ctx, "w", webhook_retries=RETRIES) if r.queue == queues.WEBHOOK)
    config = ConsumerConfig(
        queue=queues.WEBHOOK,
        concurrency=8,
        batch_size=8,
        max_reads=RETRIES.max_reads,
        backoff_base=RETRIES.backoff_base,
        backoff_max=RETRIES.backoff_max,
    )
    return QueueConsumer(ctx.db, config, route.handler, reader=route.reader, listen_dsn=db_dsn)


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections (nothing listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def due(db: Conn, owner: uuid.UUID) -> int:
    """`owner`'s deliveries due now (new, or failed and past their backoff)."""
    return int(
        one(
            db,
            "select count(*) as n from pgmq.q_webhook_delivery"
            " where vt <= clock_timestamp() and message -> 'data' ->> 'ownerId' = %s",
            (str(owner),),
        )["n"]
    )


async def test_another_users_deliveries_are_prompt_while_dead_endpoints_deliveries_and_retries_are_due(
    cpu: CpuExecutor, db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    bound = 50
    await asyncio.to_thread(declare, db_dsn, pending=bound)
    careless, other = create_user(db), create_user(db)
    dead_url = f"http://127.0.0.1:{closed_port()}/hook"
    dead = [endpoint(db, careless, dead_url) for _ in range(10)]
    with receiving() as receiver:
        live = endpoint(db, other, receiver.url("/live"))
        secret = one(db, "select secret from voicegate.webhook_secrets where endpoint_id = %s", (live,))["secret"]
        receiver.secrets["/live"] = secret
        async with open_lifecycle(cpu, db_dsn, tmp_path) as ctx:
            consumer = webhook_consumer(ctx, db_dsn)
            stopping = asyncio.Event()
            task = asyncio.create_task(consumer.run(stopping))
            try:
                await asyncio.wait_for(consumer.listening.wait(), 5)
                # A burst: 100 events of the careless user, each to ten endpoints that refuse connections,
                # written while the consumer works: the first of them fail and wait out their backoff.
                await asyncio.to_thread(burst, db_dsn, careless, 100)
                most = max(len(pending(db, target)) for target in dead)
                await until(lambda: failed_once(db) >= 8, within=30)
                # Every backoff runs out at once: all 500 are due, ahead of the other user's event by their `vt`.
                # (Before, this test emitted once every delivery had failed once, 3-7 s on a busy machine, and
                # whether any retries were due by then, for the event to wait behind, was up to its speed.)
                # Off the event loop: the update waits for any row a consumer's open transaction holds, and that
                # transaction commits on this loop (run on it, the two waited on each other until the timeout).
                await asyncio.to_thread(
                    db.execute,
                    "update pgmq.q_webhook_delivery set vt = clock_timestamp() - interval '1 second'"
                    " where message -> 'data' ->> 'ownerId' = %s and vt > clock_timestamp()",
                    (str(careless),),
                )
                ahead = due(db, careless)
                sent = time.monotonic()
                emit(db, other, 0)
                await until(lambda: bool(receiver.at("/live")), within=10)
                latency = time.monotonic() - sent
                left = due(db, careless)
                retrying = len(pending(db, dead[0]))
            finally:
                stopping.set()
                await asyncio.wait_for(task, 30)
    assert bound - bound // 10 < most <= bound  # a full endpoint has its oldest tenth moved at once
    assert ahead > 8 * bound  # the dead endpoints' deliveries were due, before the other user's event
    # In turn: delivered while most of them were still due (by `vt` alone, every one of them went first).
    assert left > bound, left
    assert retrying > 0
    assert all(len(pending(db, target)) <= bound for target in dead)
    assert receiver.at("/live")[0].answered == 204
    assert latency < 1.0


def in_hand(db: Conn, owner: uuid.UUID) -> int:
    """`owner`'s deliveries a consumer has read and holds (invisible, never failed)."""
    return int(
        one(
            db,
            "select count(*) as n from pgmq.q_webhook_delivery"
            " where read_ct > 0 and vt > clock_timestamp() and message -> 'data' ->> 'ownerId' = %s",
            (str(owner),),
        )["n"]
    )


async def test_a_users_hung_receivers_hold_only_their_share_of_the_slots(
    cpu: CpuExecutor, db: Conn, db_dsn: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(declare, db_dsn, pending=20)
    hanging, other = create_user(db), create_user(db)
    share = Turns(8).share
    with ExitStack() as hung_port, receiving() as receiver:
        port = hung_port.enter_context(silent_port())
        hung = [endpoint(db, hanging, f"http://127.0.0.1:{port}/hook") for _ in range(4)]
        live = endpoint(db, other, receiver.url("/live"))
        receiver.secrets["/live"] = one(
            db, "select secret from voicegate.webhook_secrets where endpoint_id = %s", (live,)
        )["secret"]
        async with open_lifecycle(cpu, db_dsn, tmp_path) as ctx:
            consumer = webhook_consumer(ctx, db_dsn)
            stopping = asyncio.Event()
            task = asyncio.create_task(consumer.run(stopping))
            try:
                await asyncio.wait_for(consumer.listening.wait(), 5)
                await asyncio.to_thread(burst, db_dsn, hanging, 20)  # 80 deliveries to receivers that never answer
                # The first of them hang in the consumer's slots (each for the sender's 15 s), before any is known
                # slow: they take the hanging user's share, and no more.
                await until(lambda: in_hand(db, hanging) >= share, within=10)
                sent = time.monotonic()
                emit(db, other, 0)
                await until(lambda: bool(receiver.at("/live")), within=15)
                latency = time.monotonic() - sent
                held = in_hand(db, hanging)
                unread = untried(db)
                # Closed: the hung deliveries end now, not when the sender gives up on them.
                hung_port.close()
            finally:
                stopping.set()
                await asyncio.wait_for(task, 30)
    assert receiver.at("/live")[0].answered == 204
    # Before the share, the first eight took every slot and the other user's event waited for one to fail: 15 s.
    assert latency < 1.0
    assert held == share  # the rest of the hanging user's deliveries stayed unread, uncounted
    assert unread == 80 - share
    assert sum(len(pending(db, target)) for target in hung) == 80
