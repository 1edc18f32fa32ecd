"""Retention (backend.records.retention): each growing table loses only the rows past its bound, a batch per
short transaction; the audit events a legal hold keeps stay whatever their age; the maintenance sweep prunes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from backend import queues
from backend.db.connection import Connection
from backend.db.pool import create_pool
from backend.db.units import Database
from backend.domain.limits import Retention
from backend.records import retention
from backend.records.retention import prune
from backend.settings import Settings
from devkit.db import create_user, one
from queue_consumers.maintenance import sweep
from standins.storage.in_process import standalone_storage
from tests.support import seed_attempt, seed_voice

OLD = "20 days"
YOUNG = "1 day"
#: Every bound 10 days: OLD rows are past it, YOUNG ones within it.
TEN_DAYS = Retention(
    queue_archive_days=10,
    audit_days=10,
    attempt_history_days=10,
    speech_days=10,
    job_days=10,
    usage_days=10,
    batch=10,
)
HELD = ("consent.verified", "consent.evidence_purged", "user.erase", "provider_voice.delete", "sample.purge")


@contextmanager
def seeding(db: psycopg.Connection[Any]) -> Iterator[None]:
    """Rows written as they would be long ago, with no trigger (no launch gate, no queue message, no event)."""
    with db.transaction():
        db.execute("set local session_replication_role = replica")
        yield


def archived(db: psycopg.Connection[Any], queue: str, age: str) -> int:
    """A message sent to `queue` and archived `age` ago; its id."""
    msg_id = one(db, "select pgmq.send(%s, '{}'::jsonb) as id", (queue,))["id"]
    db.execute("select pgmq.archive(%s, %s::bigint)", (queue, msg_id))
    db.execute(
        psycopg.sql.SQL("update pgmq.{} set archived_at = now() - %s::interval where msg_id = %s").format(
            psycopg.sql.Identifier(f"a_{queue}")
        ),
        (age, msg_id),
    )
    return int(msg_id)


def ids(db: psycopg.Connection[Any], query: str) -> set[Any]:
    return {row[0] for row in db.execute(query).fetchall()}  # type: ignore[call-overload]


class Seeded(msgspec.Struct):
    queues: list[str]
    archive: dict[str, tuple[int, int]]
    audit: dict[str, int]
    old_attempt: uuid.UUID
    open_attempt: uuid.UUID
    events: dict[str, int]
    streams: dict[str, uuid.UUID]
    sessions: dict[str, uuid.UUID]
    jobs: dict[str, uuid.UUID]
    usage: dict[str, int]
    errors: dict[str, int]
    keys: dict[str, str]
    outbox: dict[str, int]


def seed(db: psycopg.Connection[Any]) -> Seeded:
    """An old row past the bound and a young one within it in every growing table, and the old rows the bound
    must spare: legal-hold audit events, a stream still playing, a job still queued, an unfinished attempt's
    events."""
    archive = {queue: (archived(db, queue, OLD), archived(db, queue, YOUNG)) for queue in queues.ALL}
    owner = create_user(db)
    voice = seed_voice(db, owner)
    old_attempt = seed_attempt(db, owner, voice, None)["id"]
    open_attempt = seed_attempt(db, owner, seed_voice(db, owner), None)["id"]
    with seeding(db):
        db.execute(
            "update voice_clone_attempts set status = 'failed', finished_at = now() - %s::interval where id = %s",
            (OLD, old_attempt),
        )

        def audit(action: str, age: str) -> int:
            return int(
                one(
                    db,
                    "insert into voicegate.audit_events (at, actor, action, subject_type, subject_id)"
                    " values (now() - %s::interval, 'test', %s, 'thing', 'x') returning id",
                    (age, action),
                )["id"]
            )

        audits = {"old": audit("storage.orphan_remove", OLD), "young": audit("storage.orphan_remove", YOUNG)}
        audits |= {action: audit(action, OLD) for action in HELD}

        def event(attempt: uuid.UUID, age: str) -> int:
            return int(
                one(
                    db,
                    "insert into voice_clone_attempt_events (attempt_id, owner_id, dimension, from_state, to_state,"
                    " actor, at) values (%s, %s, 'status', 'queued', 'processing', 'worker', now() - %s::interval)"
                    " returning id",
                    (attempt, owner, age),
                )["id"]
            )

        events = {"old": event(old_attempt, OLD), "young": event(old_attempt, YOUNG), "open": event(open_attempt, OLD)}

        def stream(outcome: str, age: str) -> uuid.UUID:
            finished = None if outcome == "streaming" else age
            return uuid.UUID(
                str(
                    one(
                        db,
                        "insert into speech_streams (owner_id, voice_id, provider, provider_voice_id, format,"
                        " text_characters, outcome, started_at, finished_at) values (%s, %s, 'local', 'v', 'wav', 5,"
                        " %s, now() - %s::interval, now() - %s::interval) returning id",
                        (owner, voice, outcome, age, finished),
                    )["id"]
                )
            )

        streams = {
            "old": stream("completed", OLD),
            "young": stream("completed", YOUNG),
            "playing": stream("streaming", OLD),
        }

        def session(age: str) -> uuid.UUID:
            reflection = one(db, "insert into reflections (owner_id, name) values (%s, 'r') returning id", (owner,))
            return uuid.UUID(
                str(
                    one(
                        db,
                        "insert into reflection_sessions (owner_id, reflection_id, attempt_id, created_at)"
                        " values (%s, %s, %s, now() - %s::interval) returning id",
                        (owner, reflection["id"], old_attempt, age),
                    )["id"]
                )
            )

        sessions = {"old": session(OLD), "young": session(YOUNG)}

        def job(status: str, age: str) -> uuid.UUID:
            finished = None if status == "queued" else age
            return uuid.UUID(
                str(
                    one(
                        db,
                        "insert into synthesis_jobs (owner_id, voice_id, input_text, status, created_at, finished_at)"
                        " values (%s, %s, 'hello', %s, now() - %s::interval, now() - %s::interval) returning id",
                        (owner, voice, status, age, finished),
                    )["id"]
                )
            )

        jobs = {"old": job("failed", OLD), "young": job("canceled", YOUNG), "queued": job("queued", OLD)}

        def usage(age: str) -> int:
            return int(
                one(
                    db,
                    "insert into voicegate.usage_events (owner_id, provider, kind, work_id, call_key, characters, at)"
                    " values (%s, 'local', 'job', gen_random_uuid(), 'c', 5, now() - %s::interval) returning id",
                    (owner, age),
                )["id"]
            )

        usages = {"old": usage(OLD), "young": usage(YOUNG)}

        def error(msg_id: int, age: str) -> int:
            db.execute(
                "insert into voicegate.queue_message_errors (queue_name, msg_id, read_ct, error, at)"
                " values ('voice_preview', %s, 1, 'boom', now() - %s::interval)",
                (msg_id, age),
            )
            return msg_id

        errors = {"old": error(1, OLD), "young": error(2, YOUNG)}

        def key(name: str, expires: str) -> str:
            db.execute(
                "insert into voicegate.idempotency_keys (owner_id, route, key, fingerprint, claim_token, created_at,"
                " expires_at) values (%s, 'POST /x', %s, repeat('a', 64), gen_random_uuid(),"
                " now() - interval '30 days', now() + %s::interval)",
                (owner, name, expires),
            )
            return name

        keys = {"expired": key("expired", "-1 hour"), "live": key("live", "1 hour")}

        def legacy(age: str) -> int:
            return int(
                one(
                    db,
                    "insert into voice_clone_outbox (owner_id, voice_id, provider, created_at)"
                    " values (%s, %s, 'local', now() - %s::interval) returning id",
                    (owner, voice, age),
                )["id"]
            )

        outbox = {"old": legacy(OLD), "young": legacy(YOUNG)}
    return Seeded(
        queues=list(queues.ALL),
        archive=archive,
        audit=audits,
        old_attempt=old_attempt,
        open_attempt=open_attempt,
        events=events,
        streams=streams,
        sessions=sessions,
        jobs=jobs,
        usage=usages,
        errors=errors,
        keys=keys,
        outbox=outbox,
    )


def test_each_table_loses_only_the_rows_past_its_bound(db: psycopg.Connection[Any], database: Database) -> None:
    seeded = seed(db)

    removed = asyncio.run(
        prune(database.service_transaction, TEN_DAYS, queues=queues.ALL, deadline=time.monotonic() + 30)
    )

    for queue in seeded.queues:
        young = seeded.archive[queue][1]
        assert ids(db, f"select msg_id from pgmq.a_{queue}") == {young}, queue
        assert removed[f"pgmq.a_{queue}"] == 1
    assert ids(db, "select id from voicegate.audit_events") >= {seeded.audit["young"], *(seeded.audit[a] for a in HELD)}
    assert seeded.audit["old"] not in ids(db, "select id from voicegate.audit_events")
    assert ids(
        db, "select id from voice_clone_attempt_events where attempt_id in (select id from voice_clone_attempts)"
    ) >= {
        seeded.events["young"],
        seeded.events["open"],
    }
    assert seeded.events["old"] not in ids(db, "select id from voice_clone_attempt_events")
    assert ids(db, "select id from voice_clone_attempts") == {seeded.old_attempt, seeded.open_attempt}
    assert ids(db, "select id from speech_streams") == {seeded.streams["young"], seeded.streams["playing"]}
    assert ids(db, "select id from reflection_sessions") == {seeded.sessions["young"]}
    assert ids(db, "select id from synthesis_jobs") == {seeded.jobs["young"], seeded.jobs["queued"]}
    assert ids(db, "select id from voicegate.usage_events") == {seeded.usage["young"]}
    assert ids(db, "select msg_id from voicegate.queue_message_errors") == {seeded.errors["young"]}
    assert ids(db, "select key from voicegate.idempotency_keys") == {seeded.keys["live"]}
    assert ids(db, "select id from voice_clone_outbox") == {seeded.outbox["young"]}
    assert removed["public.voice_clone_outbox"] == 1
    assert removed["voicegate.audit_events"] == 1
    assert removed["public.voice_clone_attempt_events"] == 1


def test_a_queue_of_another_application_is_left_alone(db: psycopg.Connection[Any], database: Database) -> None:
    db.execute("select pgmq.create('theirs')")
    theirs = archived(db, "theirs", OLD)
    ours = archived(db, "voice_preview", OLD)

    removed = asyncio.run(
        prune(database.service_transaction, TEN_DAYS, queues=queues.ALL, deadline=time.monotonic() + 30)
    )

    assert removed == {"pgmq.a_voice_preview": 1}
    assert ids(db, "select msg_id from pgmq.a_theirs") == {theirs}
    assert ours not in ids(db, "select msg_id from pgmq.a_voice_preview")


def test_legal_hold_events_stay_whatever_their_age(db: psycopg.Connection[Any], database: Database) -> None:
    seeded = seed(db)
    longest = msgspec.structs.replace(TEN_DAYS, audit_days=0.0001)  # about 9 s

    asyncio.run(prune(database.service_transaction, longest, queues=queues.ALL, deadline=time.monotonic() + 30))

    left = {row[0] for row in db.execute("select action from voicegate.audit_events").fetchall()}
    assert left == set(HELD)
    assert seeded.audit["young"] not in ids(db, "select id from voicegate.audit_events")
    held = db.execute("select bool_and(voicegate.audit_held(a)) from unnest(%s::text[]) a", (list(HELD),)).fetchone()
    assert held == (True,)


def test_zero_keeps_the_rows_for_ever(db: psycopg.Connection[Any], database: Database) -> None:
    seeded = seed(db)
    forever = Retention(
        queue_archive_days=0, audit_days=0, attempt_history_days=0, speech_days=0, job_days=0, usage_days=0, batch=10
    )

    removed = asyncio.run(
        prune(database.service_transaction, forever, queues=queues.ALL, deadline=time.monotonic() + 30)
    )

    assert removed == {"voicegate.idempotency_keys": 1}
    assert seeded.audit["old"] in ids(db, "select id from voicegate.audit_events")
    assert ids(db, "select id from synthesis_jobs") == set(seeded.jobs.values())
    assert ids(db, "select id from voice_clone_outbox") == set(seeded.outbox.values())


def test_batches_are_bounded_and_each_is_its_own_transaction(db: psycopg.Connection[Any], database: Database) -> None:
    for _ in range(25):
        archived(db, "voice_preview", OLD)
    left: list[int] = []

    @asynccontextmanager
    async def counted() -> AsyncIterator[Connection]:
        async with database.service_transaction() as conn:
            yield conn
        # What the committed transaction left, seen from another session.
        left.append(int(one(db, "select count(*) as n from pgmq.a_voice_preview")["n"]))

    removed = asyncio.run(prune(counted, TEN_DAYS, queues=queues.ALL, deadline=time.monotonic() + 30))

    assert removed["pgmq.a_voice_preview"] == 25
    steps = [before - after for before, after in zip([25, *left], left, strict=False) if before != after]
    assert steps == [10, 10, 5]


def test_a_past_deadline_stops_after_the_batch_under_way(db: psycopg.Connection[Any], database: Database) -> None:
    for _ in range(25):
        archived(db, "voice_preview", OLD)

    removed = asyncio.run(prune(database.service_transaction, TEN_DAYS, queues=queues.ALL, deadline=time.monotonic()))
    assert removed == {}
    assert one(db, "select count(*) as n from pgmq.a_voice_preview")["n"] == 25
    again = asyncio.run(
        prune(database.service_transaction, TEN_DAYS, queues=queues.ALL, deadline=time.monotonic() + 30)
    )
    assert again["pgmq.a_voice_preview"] == 25


def test_the_maintenance_sweep_prunes_with_the_settings(
    db_dsn: str, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    kept = archived(db, "webhook_delivery", YOUNG)
    archived(db, "webhook_delivery", OLD)
    settings = Settings(data_dir=tmp_path, queue_archive_retention_days=10)

    async def run() -> dict[str, int]:
        pool = create_pool(db_dsn, settings.pool_limits)
        await pool.open(wait=True)
        try:
            async with standalone_storage(db_dsn, tmp_path / "storage") as storage:
                return (await sweep(settings, Database(pool), storage)).pruned
        finally:
            await pool.close()

    assert asyncio.run(run()) == {"pgmq.a_webhook_delivery": 1}
    assert ids(db, "select msg_id from pgmq.a_webhook_delivery") == {kept}


#: Tables whose oldest row `voicegate ops status` may read without an index: a queue holds only what is in flight,
#: and these hold a row per user.
SMALL = {"user_usage", "erasures"}


def seq_scanned(db: psycopg.Connection[Any], query: str, params: dict[str, object]) -> set[str]:
    """The tables `query`'s plan reads whole when sequential scans are priced out (so a table still scanned has no
    index the query can read it by), the catalogue and the queues (a queue holds only what is in flight) left out."""
    with db.transaction():
        db.execute("set local enable_seqscan = off")
        [plan] = db.execute("explain (format json) " + query, params).fetchone()  # type: ignore[call-overload,misc]

    def scanned(node: dict[str, Any]) -> Iterator[str]:
        if node["Node Type"] == "Seq Scan":
            yield node["Relation Name"]
        for child in node.get("Plans", ()):
            yield from scanned(child)

    return {name for name in scanned(plan[0]["Plan"]) if not name.startswith(("pg_", "q_"))}


def test_the_oldest_row_of_each_growing_table_is_read_by_an_index(db: psycopg.Connection[Any]) -> None:
    tables = seq_scanned(db, retention._Q["table_sizes"], {})
    assert tables <= SMALL, tables - SMALL


@pytest.mark.parametrize("query", [name for name in retention._Q if name.startswith("prune_")])
def test_each_retention_batch_finds_its_rows_by_an_index(db: psycopg.Connection[Any], query: str) -> None:
    # A batch that read its table whole would cost more with every row the table holds, every sweep.
    params = {"keep": timedelta(days=10), "limit": 10, "queue": "webhook_delivery"}
    assert seq_scanned(db, retention._Q[query], params) == set()
