"""The clone queue's read leases what it delivers (`voicegate.read_and_lease_attempts`): a due `queued`
attempt is moved to `processing` under this worker's lease in the read's own transaction, through the one
transition function (so its event is recorded); anything else is delivered untouched for the worker to
judge, and a malformed message does not break the read. The clone step trusts the lease it is handed only
while it is fresh: a message read ahead that waited long for a slot is claimed again."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

from backend import queues
from backend.clone.step import process_attempt
from backend.cpu import CpuExecutor
from backend.db.units import Database
from backend.domain.attempts import as_row
from backend.records import attempts
from backend.settings import settings_from_env
from devkit.db import Conn, create_user, one
from queue_consumers.worker import build_consumers
from tests.integration.conftest import open_lifecycle
from tests.support import local_attempt, seed_attempt, seed_voice

WORKER = "worker-lease"


async def read(database: Database, qty: int = 10) -> list[dict[str, Any]]:
    async with database.service_transaction() as conn:
        return await attempts.read_and_lease(conn, queues.CLONE, vt=30, qty=qty, lease_owner=WORKER, lease_seconds=60)


def drain(db: Conn) -> None:
    """Archive whatever earlier tests left in the clone queue (each test's database is its own, but be sure)."""
    db.execute("select pgmq.purge_queue(%s)", (queues.CLONE,))


async def test_a_due_queued_attempt_is_leased_as_it_is_read(database: Database, db: Conn) -> None:
    drain(db)
    owner = create_user(db)
    attempt = seed_attempt(db, owner, seed_voice(db, owner), None)
    [row] = await read(database)
    assert row["message"]["attemptId"] == str(attempt["id"])
    leased = as_row(row["leased"])
    assert (leased.id, leased.status, leased.lease_owner) == (attempt["id"], "processing", WORKER)
    assert leased.version == attempt["version"] + 1
    stored = one(
        db,
        "select status, lease_owner, lease_expires_at > now() as held from voice_clone_attempts where id = %s",
        (attempt["id"],),
    )
    assert stored == {"status": "processing", "lease_owner": WORKER, "held": True}
    events = one(
        db,
        "select count(*) as n from voice_clone_attempt_events where attempt_id = %s and actor = %s",
        (attempt["id"], f"worker:{WORKER}"),
    )
    assert events["n"] >= 1, "the move is recorded like any other"


async def test_what_is_not_due_or_not_queued_is_delivered_untouched(database: Database, db: Conn) -> None:
    drain(db)
    owner = create_user(db)
    voice = seed_voice(db, owner)
    later = seed_attempt(db, owner, voice, None)
    db.execute(
        "update voice_clone_attempts set next_retry_at = now() + interval '1 hour' where id = %s", (later["id"],)
    )
    taken = seed_attempt(db, owner, seed_voice(db, owner), None)
    first = await read(database)
    assert {r["message"]["attemptId"]: r["leased"] is not None for r in first} == {
        str(later["id"]): False,
        str(taken["id"]): True,
    }
    # A second message for the attempt already leased (a duplicate, a redelivery) leases nothing.
    db.execute(
        "select pgmq.send(%s, %s::jsonb)", (queues.CLONE, json.dumps({"attemptId": str(taken["id"]), "version": 1}))
    )
    [again] = await read(database)
    assert (again["message"]["attemptId"], again["leased"]) == (str(taken["id"]), None)


async def test_a_malformed_message_is_delivered_without_breaking_the_read(database: Database, db: Conn) -> None:
    drain(db)
    for body in ({"attemptId": "not-a-uuid"}, {"nothing": True}, {"attemptId": str(uuid.uuid4())}):
        db.execute("select pgmq.send(%s, %s::jsonb)", (queues.CLONE, json.dumps(body)))
    rows = await read(database)
    assert len(rows) == 3
    assert all(r["leased"] is None for r in rows)


async def test_an_attempt_read_long_before_its_run_is_claimed_again_rather_than_trusted(
    database: Database, db: Conn, db_dsn: str, cpu: CpuExecutor, tmp_path: Path
) -> None:
    drain(db)
    attempt = local_attempt(db)["attempt_id"]
    [row] = await read(database)
    # The lease ran out while the message waited unstarted (the worker busy with other work meanwhile).
    db.execute(
        "update voice_clone_attempts set lease_expires_at = now() - interval '1 second' where id = %s", (attempt,)
    )
    async with open_lifecycle(cpu, db_dsn, tmp_path) as ctx:
        # Handed over as just read, the run trusts that lease, and its fenced move finds it gone.
        just_read = await process_attempt(ctx, attempt, WORKER, leased=row["leased"], read_at=time.monotonic())
        assert just_read.status == "lease_lost"
        # Read longer ago than a third of a lease, the run claims the attempt as committed: leased anew.
        waited = time.monotonic() - ctx.lease_seconds / 3 - 1
        done = await process_attempt(ctx, attempt, WORKER, leased=row["leased"], read_at=waited)
    assert done.status == "ready"
    stored = one(db, "select status, runtime_status from voice_clone_attempts where id = %s", (attempt,))
    assert stored == {"status": "ready", "runtime_status": "synced"}


async def test_attempts_read_together_complete_together_and_one_refused_leaves_the_others_to_complete(
    database: Database, db: Conn, db_dsn: str, cpu: CpuExecutor, tmp_path: Path
) -> None:
    drain(db)
    first = [local_attempt(db)["attempt_id"] for _ in range(3)]
    second = [local_attempt(db)["attempt_id"] for _ in range(3)]
    async with open_lifecycle(cpu, db_dsn, tmp_path) as ctx:
        # A batch read together goes on in step: its completions (and the voices' reads after them) are sent in
        # one round trip and commit in one transaction.
        leased = {row["message"]["attemptId"]: row["leased"] for row in await read(database, qty=3)}
        done = await asyncio.gather(
            *(process_attempt(ctx, a, WORKER, leased=leased[str(a)], read_at=time.monotonic()) for a in first)
        )
        assert [outcome.status for outcome in done] == ["ready"] * 3
        readied = db.execute(
            "select distinct xmin::text from voice_clone_attempt_events"
            " where attempt_id = any(%s) and to_state = 'ready'",
            (first,),
        ).fetchall()
        assert len(readied) == 1
        # One of the next batch lost its lease meanwhile: its refusal fails the group, which commits nothing; each
        # completion is sent again alone, and only that one is refused.
        leased = {row["message"]["attemptId"]: row["leased"] for row in await read(database, qty=3)}
        db.execute("update voice_clone_attempts set lease_owner = 'another' where id = %s", (second[1],))
        done = await asyncio.gather(
            *(process_attempt(ctx, a, WORKER, leased=leased[str(a)], read_at=time.monotonic()) for a in second)
        )
    assert [outcome.status for outcome in done] == ["ready", "lease_lost", "ready"]
    stored = db.execute(
        "select id, status, runtime_status, (select count(*) from voicegate.service_written_objects o"
        " where o.name like '%%' || a.voice_id || '.json') as manifests"
        " from voice_clone_attempts a where id = any(%s)",
        (second,),
    ).fetchall()
    assert {row[0]: row[1:] for row in stored} == {
        second[0]: ("ready", "synced", 1),
        second[1]: ("processing", "pending", 0),
        second[2]: ("ready", "synced", 1),
    }


async def test_the_clone_queue_reads_its_own_concurrency_in_step_and_the_other_queues_the_workers(
    db_dsn: str, cpu: CpuExecutor, tmp_path: Path
) -> None:
    env = {"VOICEGATE_CLONE_CONCURRENCY": "12", "VOICEGATE_WORKER_CONCURRENCY": "3"}
    async with open_lifecycle(cpu, db_dsn, tmp_path, **env) as ctx:
        settings = settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path), **env})
        consumers = build_consumers(settings, ctx, listen_dsn=None, worker_id=WORKER)
    sizes = {c.config.queue: (c.config.concurrency, c.config.batch_size, c.config.in_step) for c in consumers}
    assert sizes.pop(queues.CLONE) == (12, 12, True)
    assert sizes
    assert set(sizes.values()) == {(3, 3, False)}
