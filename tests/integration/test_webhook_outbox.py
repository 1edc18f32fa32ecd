"""The webhook outbox: each state change writes its event to `webhook_delivery` in the transaction that
makes it (a trigger), one message for the project's endpoint and one per subscribed endpoint of the
event's owner, all with one `webhookId`; a change that rolls back leaves no event, and nobody else's
endpoint ever gets one. A project whose workers have no endpoint gets no message at all."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import psycopg

from backend.db.pool import create_pool
from backend.db.units import Database
from backend.settings import Settings
from backend.webhooks import step as webhook_step
from devkit.db import create_user, one, seed_consent, seed_reflection
from tests.support import queue_messages, seed_attempt, seed_voice, transition

Db = psycopg.Connection[Any]
ALL_EVENTS = [
    "sample.ready",
    "sample.failed",
    "voice.ready",
    "voice.failed",
    "synthesis.succeeded",
    "synthesis.failed",
    "reflection.launch_ready",
]


def endpoint(db: Db, owner: uuid.UUID, events: list[str] | None = None) -> uuid.UUID:
    return one(
        db,
        "insert into webhook_endpoints (owner_id, url, events) values (%s, 'https://hooks.example.com/x', %s)"
        " returning id",
        (owner, events or ALL_EVENTS),
    )["id"]


def events(db: Db) -> list[dict[str, Any]]:
    """The outbox, then emptied, so each step of a test sees only what it caused."""
    messages = [m["message"] for m in queue_messages(db, "webhook_delivery")]
    db.execute("select pgmq.purge_queue('webhook_delivery')")
    return messages


def by_target(messages: list[dict[str, Any]]) -> dict[str | None, list[str]]:
    targets: dict[str | None, list[str]] = {}
    for message in messages:
        targets.setdefault(message["endpointId"], []).append(message["type"])
    return targets


def sample(db: Db, owner: uuid.UUID) -> uuid.UUID:
    return one(
        db,
        "insert into voice_samples (owner_id, consent_id, object_path, provider, status)"
        " values (%s, %s, %s, 'local', 'processing') returning id",
        (owner, seed_consent(db, owner), f"{owner}/samples/{uuid.uuid4()}/original"),
    )["id"]


def ready(db: Db, attempt: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Claim, enrol and verify an attempt as a worker does: `queued → processing → verifying → ready`."""
    lease = {"lease_owner": "w", "lease_seconds": 60}
    claimed = transition(db, attempt["id"], attempt["version"], status="processing", changes=lease)
    enrolled = transition(
        db,
        attempt["id"],
        claimed["version"],
        status="verifying",
        lease_owner="w",
        changes={"provider_voice_id": f"pv-{attempt['id']}", **changes},
    )
    return transition(db, attempt["id"], enrolled["version"], status="ready", lease_owner="w")


def test_a_checked_sample_is_announced_to_the_project_and_its_owners_endpoints_only(db: Db) -> None:
    owner, stranger = create_user(db), create_user(db)
    mine, also_mine = endpoint(db, owner), endpoint(db, owner, ["sample.failed"])
    endpoint(db, stranger)
    checked = sample(db, owner)
    events(db)

    db.execute(
        "update voice_samples set status = 'ready', duration_ms = 5000,"
        ' quality_report = \'{"verdict": "good"}\' where id = %s',
        (checked,),
    )

    sent = events(db)
    assert by_target(sent) == {None: ["sample.ready"], str(mine): ["sample.ready"]}
    assert also_mine not in {m["endpointId"] for m in sent}
    first = sent[0]
    assert re.fullmatch(r"msg_[0-9a-f]{32}", first["webhookId"])
    assert {m["webhookId"] for m in sent} == {first["webhookId"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["timestamp"])
    assert first["data"] == {
        "ownerId": str(owner),
        "sampleId": str(checked),
        "voiceId": None,
        "provider": "local",
        "status": "ready",
        "durationMs": 5000,
        "verdict": "good",
        "failureReason": None,
    }

    db.execute(
        "update voice_samples set status = 'failed', failure_reason = 'no speech detected' where id = %s", (checked,)
    )
    failed = events(db)
    assert by_target(failed) == {
        None: ["sample.failed"],
        str(mine): ["sample.failed"],
        str(also_mine): ["sample.failed"],
    }
    assert failed[0]["data"]["failureReason"] == "no speech detected"


def test_a_change_that_rolls_back_sends_nothing(db: Db) -> None:
    owner = create_user(db)
    endpoint(db, owner)
    checked = sample(db, owner)
    events(db)

    with db.transaction(force_rollback=True):
        db.execute("update voice_samples set status = 'ready' where id = %s", (checked,))
        assert len(queue_messages(db, "webhook_delivery")) == 2  # written, uncommitted

    assert events(db) == []


def test_the_voice_events_follow_its_active_attempt(db: Db) -> None:
    owner = create_user(db)
    mine = endpoint(db, owner)
    voice = seed_voice(db, owner)
    attempt = seed_attempt(db, owner, voice, None, preview_required=False)
    events(db)

    made = ready(db, attempt, provider_target_model="model-1")

    sent = events(db)
    assert by_target(sent) == {None: ["voice.ready"], str(mine): ["voice.ready"]}
    assert sent[0]["data"] == {
        "ownerId": str(owner),
        "voiceId": str(voice),
        "attemptId": str(made["id"]),
        "reflectionId": None,
        "provider": "local",
        "providerVoiceId": f"pv-{made['id']}",
        "targetModel": "model-1",
        "error": None,
    }

    retried = seed_attempt(db, owner, voice, None, preview_required=False)
    transition(
        db,
        retried["id"],
        retried["version"],
        status="failed",
        changes={"last_error_code": "provider_rejected", "last_error_message": "The sample was refused."},
    )
    failed = events(db)
    assert by_target(failed) == {None: ["voice.failed"], str(mine): ["voice.failed"]}
    assert failed[0]["data"]["error"] == {"code": "provider_rejected", "message": "The sample was refused."}


def test_a_superseded_attempts_late_result_announces_nothing(db: Db) -> None:
    owner = create_user(db)
    endpoint(db, owner)
    reflection = seed_reflection(db, owner)
    voice = seed_voice(db, owner)
    old = seed_attempt(db, owner, voice, reflection)
    transition(db, old["id"], old["version"], status="processing", changes={"lease_owner": "w"})
    seed_attempt(db, owner, voice, reflection)  # supersedes the old one while its worker is enrolling
    events(db)
    superseded = one(db, "select status, version from voice_clone_attempts where id = %s", (old["id"],))
    assert superseded["status"] == "superseded"

    late = transition(
        db, old["id"], superseded["version"], status="verifying", lease_owner="w", changes={"provider_voice_id": "pv"}
    )
    assert transition(db, old["id"], late["version"], status="ready", lease_owner="w")["status"] == "ready"

    assert events(db) == []


def test_launch_readiness_is_announced_once_when_the_mirror_opens_the_gate(db: Db) -> None:
    owner = create_user(db)
    mine = endpoint(db, owner, ["reflection.launch_ready"])
    reflection = seed_reflection(db, owner)
    voice = seed_voice(db, owner)
    attempt = seed_attempt(db, owner, voice, reflection)
    made = ready(db, attempt)
    synced = transition(db, made["id"], made["version"], runtime="syncing")
    synced = transition(db, made["id"], synced["version"], runtime="synced")
    previewed = transition(db, made["id"], synced["version"], preview="generating")
    previewed = transition(db, made["id"], previewed["version"], preview="ready")
    assert [m["type"] for m in events(db)] == ["voice.ready"]  # to the project; `mine` wants launches only

    heard = transition(db, made["id"], previewed["version"], preview="completed")

    sent = events(db)
    assert by_target(sent) == {None: ["reflection.launch_ready"], str(mine): ["reflection.launch_ready"]}
    assert sent[0]["data"] == {
        "ownerId": str(owner),
        "reflectionId": str(reflection),
        "voiceId": str(voice),
        "attemptId": str(made["id"]),
        "provider": "local",
    }

    transition(db, made["id"], heard["version"])  # republished unchanged (as repair-voice-mirror does)
    assert events(db) == []


def test_a_finished_job_is_announced_with_its_provenance_or_its_error(db: Db) -> None:
    owner = create_user(db)
    mine = endpoint(db, owner, ["synthesis.succeeded", "synthesis.failed", "synthesis.canceled"])
    voice = seed_voice(db, owner)
    jobs = [
        one(
            db,
            "insert into synthesis_jobs (owner_id, voice_id, input_text) values (%s, %s, 'hi') returning id",
            (owner, voice),
        )["id"]
        for _ in range(3)
    ]
    db.execute(
        "update synthesis_jobs set status = 'succeeded', output_bucket_id = 'voice-renders',"
        " output_object_path = 'x.wav', duration_ms = 1200 where id = %s",
        (jobs[0],),
    )
    db.execute(
        "update synthesis_jobs set status = 'failed', error_code = 'inference_failed',"
        " error_message = 'inference failed: timeout' where id = %s",
        (jobs[1],),
    )

    db.execute("update synthesis_jobs set status = 'canceled', finished_at = now() where id = %s", (jobs[2],))

    sent = [m for m in events(db) if m["endpointId"] == str(mine)]
    assert [(m["type"], m["data"]["jobId"]) for m in sent] == [
        ("synthesis.succeeded", str(jobs[0])),
        ("synthesis.failed", str(jobs[1])),
        ("synthesis.canceled", str(jobs[2])),
    ]
    succeeded, failed, canceled = (m["data"] for m in sent)
    assert (canceled["status"], canceled["provenance"], canceled["error"]) == ("canceled", None, None)
    assert (succeeded["provenance"], succeeded["durationMs"], succeeded["error"]) == ("c2pa", 1200, None)
    assert (failed["provenance"], failed["error"]) == (
        None,
        {"code": "inference_failed", "message": "inference failed: timeout"},
    )


def test_a_disabled_endpoint_gets_nothing(db: Db) -> None:
    owner = create_user(db)
    gone = endpoint(db, owner)
    db.execute("update webhook_endpoints set disabled_at = now() where id = %s", (gone,))
    checked = sample(db, owner)
    events(db)

    db.execute("update voice_samples set status = 'ready' where id = %s", (checked,))

    assert by_target(events(db)) == {None: ["sample.ready"]}


def declare_project_endpoint(db_dsn: str, *, configured: bool) -> None:
    """What each worker's maintenance sweep does with its VOICEGATE_WEBHOOK_URL."""

    async def run() -> None:
        pool = create_pool(db_dsn, Settings().pool_limits)
        await pool.open(wait=True)
        try:
            async with Database(pool).service_transaction() as conn:
                await webhook_step.declare_project_endpoint(conn, configured=configured)
        finally:
            await pool.close()

    asyncio.run(run())


def test_without_a_project_endpoint_only_the_owners_endpoints_get_a_message(db: Db, db_dsn: str) -> None:
    owner = create_user(db)
    mine = endpoint(db, owner)
    first, second = sample(db, owner), sample(db, owner)
    events(db)

    declare_project_endpoint(db_dsn, configured=False)
    db.execute("update voice_samples set status = 'ready' where id = %s", (first,))
    assert by_target(events(db)) == {str(mine): ["sample.ready"]}

    declare_project_endpoint(db_dsn, configured=True)
    db.execute("update voice_samples set status = 'ready' where id = %s", (second,))
    assert by_target(events(db)) == {None: ["sample.ready"], str(mine): ["sample.ready"]}
