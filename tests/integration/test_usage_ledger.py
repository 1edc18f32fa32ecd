"""The usage ledger as the synthesis worker writes it (docs/limits.md, "Spend"): one row per provider call, reserved
before the call, so the ledger's characters are exactly those the provider was sent, through a re-delivery that
speaks nothing, a run taken over from a dead worker (which speaks again, and is counted again), and a quota reached
midway (the job fails `quota_exceeded`, and nothing past the quota reaches the provider). Crossing 80 % and 100 % of
the quota queues one `usage.threshold` event each per window, in the reserving transaction."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from psycopg.rows import dict_row

from backend.cpu import CpuExecutor
from backend.synthesis.step import process_synthesis
from backend.text import pieces
from devkit.db import Conn, create_user, one
from fakes import ElevenLabsFake, serve
from fakes.core import Fault
from tests.e2e.conftest import elevenlabs_env
from tests.e2e.test_samples_and_synthesis import cloned_voice, spoken_texts
from tests.integration.conftest import open_lifecycle

TEXT = " ".join(f"This is sentence number {n}, long enough to be a sentence of its own." * 3 for n in range(4))


def queued_job(db: Conn, owner: uuid.UUID, voice_id: str, text: str, lease_owner: str | None = None) -> Any:
    status = "queued" if lease_owner is None else "processing"
    return one(
        db,
        "insert into synthesis_jobs (owner_id, voice_id, input_text, status, lease_owner, lease_expires_at)"
        " values (%s, %s, %s, %s, %s, case when %s then now() - interval '1 second' end) returning id",
        (owner, voice_id, text, status, lease_owner, lease_owner is not None),
    )["id"]


def rows(db: Conn, query: str, params: Any) -> list[dict[str, Any]]:
    with db.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()


def ledger(db: Conn, work_id: uuid.UUID) -> list[dict[str, Any]]:
    return rows(
        db,
        "select kind, provider, call_key, characters, audio_seconds from voicegate.usage_events"
        " where work_id = %s order by id",
        (work_id,),
    )


def counted(db: Conn, owner: uuid.UUID) -> int:
    found = rows(db, "select characters from voicegate.user_usage where owner_id = %s", (owner,))
    return int(found[0]["characters"]) if found else 0


async def test_a_job_is_counted_call_by_call_and_a_redelivery_adds_nothing(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, db: Conn
) -> None:
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        async with open_lifecycle(cpu, db_dsn, tmp_path, **elevenlabs_env(provider, url)) as ctx:
            user = create_user(db)
            job = queued_job(db, user, cloned_voice(db, provider, user), TEXT)
            done = await process_synthesis(ctx, job, "w1")
            again = await process_synthesis(ctx, job, "w1")

    assert (done.status, again.status) == ("succeeded", "succeeded")
    sent = spoken_texts(provider)
    written = ledger(db, job)
    assert [row["characters"] for row in written] == [len(text) for text in sent] == [len(p) for p in pieces(TEXT)]
    assert {(row["kind"], row["provider"]) for row in written} == {("job", "elevenlabs")}
    assert counted(db, user) == sum(len(text) for text in sent)
    duration_s = one(db, "select duration_ms from synthesis_jobs where id = %s", (job,))["duration_ms"] / 1000
    assert all(row["audio_seconds"] > 0 for row in written)
    assert abs(sum(row["audio_seconds"] for row in written) - duration_s) < 0.01


async def test_a_run_taken_over_from_a_dead_worker_is_counted_again_as_the_provider_is_sent_it_again(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, db: Conn
) -> None:
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        async with open_lifecycle(cpu, db_dsn, tmp_path, **elevenlabs_env(provider, url)) as ctx:
            user = create_user(db)
            job = queued_job(db, user, cloned_voice(db, provider, user), "One. Two. Three.", "dead/1")
            # What the dead run had reserved and sent before it died: its first piece.
            db.execute(
                "select * from voicegate.reserve_usage(%s, 'elevenlabs', null, 'job', %s, 'dead/1/0', 4, 1000, 86400)",
                (user, job),
            )
            done = await process_synthesis(ctx, job, "w2")

    assert done.status == "succeeded"
    written = ledger(db, job)
    assert (written[0]["call_key"], written[0]["audio_seconds"]) == ("dead/1/0", None)  # its audio was never kept
    assert [row["characters"] for row in written[1:]] == [len(text) for text in spoken_texts(provider)]
    assert counted(db, user) == 4 + sum(len(text) for text in spoken_texts(provider))


async def test_a_job_that_would_pass_the_quota_midway_fails_and_the_provider_gets_no_more(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, db: Conn
) -> None:
    parts = pieces(TEXT)
    assert len(parts) >= 3
    quota = len(parts[0]) + len(parts[1]) + 1  # two pieces fit, the third does not
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as base:
        settings = {**elevenlabs_env(provider, base), "VOICEGATE_USER_CHARACTERS": str(quota)}
        async with open_lifecycle(cpu, db_dsn, tmp_path, **settings) as ctx:
            user = create_user(db)
            voice_id = cloned_voice(db, provider, user)
            job = queued_job(db, user, voice_id, TEXT)
            done = await process_synthesis(ctx, job, "w1")
            # Nothing left: the next job fails before its first piece is sent.
            other = queued_job(db, user, voice_id, "A few more words.")
            refused = await process_synthesis(ctx, other, "w1")

    assert (done.status, refused.status) == ("failed", "failed")
    failed = one(db, "select error_code, error_message from synthesis_jobs where id = %s", (job,))
    assert failed["error_code"] == "quota_exceeded"
    assert "quota" in failed["error_message"]
    sent = spoken_texts(provider)
    assert sent == parts[:2]
    assert sum(len(text) for text in sent) <= quota
    assert sum(row["characters"] for row in ledger(db, job)) == sum(len(text) for text in sent)
    assert ledger(db, other) == []
    assert counted(db, user) == sum(len(text) for text in sent)


def threshold_events(db: Conn, owner: uuid.UUID) -> list[int]:
    found = rows(
        db,
        "select message from pgmq.q_webhook_delivery where message->>'type' = 'usage.threshold'"
        " and message->'data'->>'ownerId' = %s order by msg_id",
        (str(owner),),
    )
    return [row["message"]["data"]["percent"] for row in found]


def reserve(db: Conn, owner: uuid.UUID, characters: int, limit: int = 100) -> dict[str, Any]:
    return one(
        db,
        "select * from voicegate.reserve_usage(%s, 'local', null, 'stream', %s, '0', %s, %s, 86400)",
        (owner, uuid.uuid4(), characters, limit),
    )


def test_crossing_80_and_100_percent_queues_one_event_each_per_window(db: Conn) -> None:
    user = create_user(db)
    db.execute("update voicegate.project_webhook set configured = true")
    assert reserve(db, user, 70)["reserved"]
    assert threshold_events(db, user) == []
    assert reserve(db, user, 15)["reserved"]  # 85 %
    assert reserve(db, user, 5)["reserved"]  # 90 %: past 80 % already
    assert threshold_events(db, user) == [80]
    assert not reserve(db, user, 11)["reserved"]  # would pass it: refused, nothing emitted
    assert reserve(db, user, 10)["used"] == 100
    assert threshold_events(db, user) == [80, 100]
    data = one(
        db,
        "select message->'data' as data from pgmq.q_webhook_delivery where message->>'type' = 'usage.threshold'"
        " order by msg_id desc limit 1",
    )["data"]
    assert (data["characters"], data["limit"]) == (100, 100)

    # The next window starts from zero, and its thresholds are crossed anew.
    db.execute(
        "update voicegate.user_usage set window_start = window_start - interval '1 day' where owner_id = %s", (user,)
    )
    assert reserve(db, user, 90)["used"] == 90
    assert threshold_events(db, user) == [80, 100, 80]


async def test_a_piece_its_http_client_sent_again_is_counted_again(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, db: Conn
) -> None:
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        async with open_lifecycle(cpu, db_dsn, tmp_path, **elevenlabs_env(provider, url)) as ctx:
            user = create_user(db)
            job = queued_job(db, user, cloned_voice(db, provider, user), "One sentence. And another one.")
            # The first request is answered 503: the client sends the same text again at once.
            provider.faults.fail_next(Fault("status", 503, method="POST", path_prefix="/v1/text-to-speech"), times=1)
            done = await process_synthesis(ctx, job, "w1")

    assert done.status == "succeeded"
    sent = spoken_texts(provider)
    assert len(sent) == len(pieces("One sentence. And another one.")) + 1
    assert sum(row["characters"] for row in ledger(db, job)) == sum(len(text) for text in sent)
    assert counted(db, user) == sum(len(text) for text in sent)
