"""`voicegate.complete_attempt`, the clone step's verified → ready → synced in one call, leaves exactly what
the three `voicegate.transition_attempt` calls and the preview request it replaces left: the row, the
events, the mirror, the voice row, the provider reference, the webhook messages and the VOICE_PREVIEW
message. Each test runs in a rolled-back transaction."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from backend import queues
from devkit.db import Conn, create_user, one, seed_reflection
from tests.support import attempt_outcome, mirror, queue_messages, seed_attempt, seed_voice, transition

WORKER = "worker-1"
ACTOR = "worker:worker-1"
LEASE = {"lease_owner": WORKER, "lease_seconds": 60}
VOICE = {"provider_voice_id": "pv-1", "provider_target_model": "m-1", "provider_metadata": {"k": "v"}}


@pytest.fixture
def conn(module_db: Conn) -> Iterator[Conn]:
    with module_db.transaction(force_rollback=True):
        yield module_db


def complete(conn: Conn, attempt_id: uuid.UUID, *, lease_owner: str = WORKER, changes: Any = None) -> dict[str, Any]:
    return one(
        conn,
        "select * from voicegate.complete_attempt(%s, %s, %s, %s)",
        (attempt_id, ACTOR, lease_owner, json.dumps(changes or {})),
    )


def claimed(conn: Conn, *, preview_required: bool = True) -> tuple[dict[str, Any], uuid.UUID, uuid.UUID]:
    """A fresh user's attempt, leased to WORKER: the attempt, its voice and its reflection."""
    owner = create_user(conn)
    voice, reflection = seed_voice(conn, owner), seed_reflection(conn, owner)
    attempt = seed_attempt(conn, owner, voice, reflection, preview_required=preview_required)
    return transition(conn, attempt["id"], attempt["version"], status="processing", changes=LEASE), voice, reflection


def the_three_moves(conn: Conn, attempt: dict[str, Any]) -> dict[str, Any]:
    """What the worker did before: verifying (with another provider voice), ready + syncing, synced, and
    the preview asked for."""
    moves: list[dict[str, Any]] = [
        {"status": "verifying", "lease_owner": WORKER, "changes": {**VOICE, "provider_voice_id": "pv-0"}},
        {"status": "ready", "runtime": "syncing", "lease_owner": WORKER},
        {"runtime": "synced"},
    ]
    for move in moves:
        attempt = transition(conn, attempt["id"], attempt["version"], actor=ACTOR, **move)
    message = queues.preview_message(attempt["id"], attempt["version"])
    conn.execute("select pgmq.send('voice_preview', %s::jsonb)", (json.dumps(message, default=str),))
    return attempt


def test_one_call_leaves_what_the_three_moves_left(conn: Conn) -> None:
    before, voice_a, reflection_a = claimed(conn)
    folded, voice_b, reflection_b = claimed(conn)

    expected = attempt_outcome(conn, the_three_moves(conn, before), voice_a, reflection_a)
    got = attempt_outcome(conn, complete(conn, folded["id"], changes=VOICE), voice_b, reflection_b)

    assert got == expected
    assert [(e[1], e[2]) for e in got["events"][-4:]] == [
        ("processing", "verifying"),
        ("verifying", "ready"),
        ("pending", "syncing"),
        ("syncing", "synced"),
    ]
    assert got["row"]["version"] == folded["version"] + 3
    assert (got["row"]["status"], got["row"]["runtime_status"], got["row"]["lease_owner"]) == ("ready", "synced", None)
    assert one(conn, "select provider_voice_id from voices where id = %s", (voice_b,))["provider_voice_id"] == "pv-1"
    assert [w["type"] for w in got["webhooks"]] == ["voice.ready"]
    assert got["previews"] == [{"type": "VOICE_PREVIEW", "attemptId": "the attempt", "version": got["row"]["version"]}]


def test_the_probes_judgement_is_recorded_with_the_completion_unless_one_stands(conn: Conn) -> None:
    """The clone step's likeness probe is recorded by the completion's own update (issue 48): on the row and in
    the mirror it publishes; an attempt judged already keeps its first judgement."""
    judged = {"likeness": 0.812, "likeness_threshold": 0.75, "likeness_source": "probe", "likeness_error": None}
    fresh, _, reflection = claimed(conn)

    done = complete(conn, fresh["id"], changes={**VOICE, **judged})

    assert {name: done[name] for name in judged} == judged
    assert (mirror(conn, reflection)["likeness"], mirror(conn, reflection)["likenessSource"]) == (0.812, "probe")

    earlier, _, _ = claimed(conn)
    conn.execute(
        "update voice_clone_attempts set likeness_threshold = 0.75, likeness_source = 'probe',"
        " likeness_error = 'no_sample' where id = %s",
        (earlier["id"],),
    )
    kept = complete(conn, earlier["id"], changes={**VOICE, "provider_voice_id": "pv-2", **judged})
    assert (kept["status"], kept["likeness"], kept["likeness_error"]) == ("ready", None, "no_sample")


def test_a_judgement_moves_the_voices_updated_at_even_when_the_completion_leaves_its_row_as_it_was(
    module_db: Conn,
) -> None:
    """The likeness is in the voice's manifest, whose writers start over when `updated_at` moves: it moves with
    the judgement even when the voice row already is what the completion publishes. Each step commits, as the
    time a transaction writes is its start."""
    attempt, voice, _ = claimed(module_db)
    module_db.execute(
        "update voices set status = 'ready', tts_provider = %s, provider_voice_id = 'pv-same',"
        " provider_target_model = 'm-1', provider_request_id = null, provider_metadata = %s::jsonb where id = %s",
        (attempt["provider"], json.dumps({"k": "v"}), voice),
    )
    before = one(module_db, "select updated_at from voices where id = %s", (voice,))["updated_at"]

    judged = {"likeness_threshold": 0.75, "likeness_source": "probe", "likeness_error": "no_sample"}
    done = complete(module_db, attempt["id"], changes={**VOICE, "provider_voice_id": "pv-same", **judged})

    assert (done["status"], done["runtime_status"], done["likeness_error"]) == ("ready", "synced", "no_sample")
    assert one(module_db, "select updated_at from voices where id = %s", (voice,))["updated_at"] > before


def test_without_a_preview_to_make_none_is_asked_for(conn: Conn) -> None:
    attempt, _, _ = claimed(conn, preview_required=False)
    done = complete(conn, attempt["id"], changes=VOICE)
    assert (done["runtime_status"], done["preview_status"]) == ("synced", "not_required")
    assert [m for m in queue_messages(conn, "voice_preview") if m["message"]["attemptId"] == str(attempt["id"])] == []


def test_from_verifying_it_makes_the_two_remaining_moves(conn: Conn) -> None:
    attempt, _, reflection = claimed(conn)
    verifying = transition(
        conn, attempt["id"], attempt["version"], status="verifying", lease_owner=WORKER, changes=VOICE
    )

    done = complete(conn, attempt["id"])

    assert done["version"] == verifying["version"] + 2
    assert mirror(conn, reflection)["runtimeStatus"] == "synced"
    moves = conn.execute(
        "select from_state, to_state from voice_clone_attempt_events where attempt_id = %s and actor = %s order by id",
        (attempt["id"], ACTOR),
    ).fetchall()
    assert moves == [("verifying", "ready"), ("pending", "syncing"), ("syncing", "synced")]


def test_a_superseded_attempt_is_ready_late_and_touches_neither_mirror_nor_voice(conn: Conn) -> None:
    attempt, voice, reflection = claimed(conn)
    newer = seed_attempt(conn, attempt["owner_id"], voice, reflection)
    mirror_before = mirror(conn, reflection)
    voice_before = one(conn, "select * from voices where id = %s", (voice,))

    done = complete(conn, attempt["id"], changes=VOICE)

    assert (done["status"], done["runtime_status"], done["is_active"]) == ("ready", "pending", False)
    assert mirror(conn, reflection) == mirror_before
    assert mirror_before["attemptId"] == str(newer["id"])
    assert one(conn, "select * from voices where id = %s", (voice,)) == voice_before
    late = one(
        conn,
        "select detail from voice_clone_attempt_events where attempt_id = %s and to_state = 'ready'",
        (attempt["id"],),
    )
    assert late["detail"] == {"late": True}


@pytest.mark.parametrize(
    ("kwargs", "sqlstate"),
    [
        ({"lease_owner": "worker-2"}, "VG423"),
        ({"changes": {"status": "ready"}}, "VG400"),
        ({"changes": {"last_error_code": "x"}}, "VG400"),
    ],
)
def test_it_is_refused_without_the_lease_or_with_a_change_it_does_not_make(
    conn: Conn, kwargs: dict[str, Any], sqlstate: str
) -> None:
    attempt, _, _ = claimed(conn)
    with pytest.raises(psycopg.Error) as refused, conn.transaction():
        complete(conn, attempt["id"], **kwargs)
    assert refused.value.sqlstate == sqlstate
    assert one(conn, "select status, version from voice_clone_attempts where id = %s", (attempt["id"],)) == {
        "status": "processing",
        "version": attempt["version"],
    }


def test_an_attempt_not_in_flight_is_refused(conn: Conn) -> None:
    owner = create_user(conn)
    queued = seed_attempt(conn, owner, seed_voice(conn, owner), None)
    with pytest.raises(psycopg.Error) as refused, conn.transaction():
        complete(conn, queued["id"], lease_owner=WORKER)
    assert refused.value.sqlstate == "VG423"  # nobody holds a queued attempt's lease
    with pytest.raises(psycopg.Error) as missing, conn.transaction():
        complete(conn, uuid.uuid4())
    assert missing.value.sqlstate == "VG404"


def test_the_first_move_not_allowed_is_named_and_nothing_is_written(conn: Conn) -> None:
    attempt, _, _ = claimed(conn)
    # A runtime already syncing cannot be moved to syncing again: the third of the call's moves.
    conn.execute("update voice_clone_attempts set runtime_status = 'syncing' where id = %s", (attempt["id"],))
    events = one(conn, "select count(*) from voice_clone_attempt_events where attempt_id = %s", (attempt["id"],))
    with pytest.raises(psycopg.Error) as refused, conn.transaction():
        complete(conn, attempt["id"], changes=VOICE)
    assert refused.value.sqlstate == "VG422"
    assert refused.value.diag.message_primary == (
        f"illegal runtime transition syncing -> syncing for attempt {attempt['id']}"
    )
    after = one(conn, "select count(*) from voice_clone_attempt_events where attempt_id = %s", (attempt["id"],))
    assert after == events
    assert (
        one(conn, "select status from voice_clone_attempts where id = %s", (attempt["id"],))["status"] == "processing"
    )


@pytest.mark.parametrize(
    ("from_state", "to_state"), [("processing", "verifying"), ("verifying", "ready")], ids=["first", "second"]
)
def test_a_status_move_the_table_does_not_allow_is_named_first(conn: Conn, from_state: str, to_state: str) -> None:
    # voicegate.attempt_moves is the authority: with one of the call's status moves taken out of it (and the
    # runtime move that follows not allowed either), the call names that status move, not a later one.
    attempt, _, _ = claimed(conn)
    conn.execute("update voice_clone_attempts set runtime_status = 'syncing' where id = %s", (attempt["id"],))
    conn.execute(
        "delete from voicegate.attempt_moves where dimension = 'status' and from_state = %s and to_state = %s",
        (from_state, to_state),
    )
    with pytest.raises(psycopg.Error) as refused, conn.transaction():
        complete(conn, attempt["id"], changes=VOICE)
    assert refused.value.sqlstate == "VG422"
    assert refused.value.diag.message_primary == (
        f"illegal status transition {from_state} -> {to_state} for attempt {attempt['id']}"
    )
