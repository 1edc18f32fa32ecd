"""The clone queue's leasing read (`voicegate.read_and_lease_attempts`) makes its lease in place, and leaves
exactly what the `voicegate.transition_attempt` call it replaces left: the row (and the row it hands back),
the event with its detail, the mirror, the voice row. An attempt's events go with it when its owner is
deleted, with no foreign key to check each event's attempt as it is written. Each test runs in a
rolled-back transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend import queues
from backend.clone import likeness
from backend.db.queries import load_queries
from devkit.db import Conn, create_user, one, seed_consent, seed_reflection
from tests.support import attempt_outcome, seed_attempt, seed_voice, transition

#: The probe's own read of what the leasing read now hands it.
SAMPLE_PRINT = load_queries(Path(likeness.__file__).with_suffix(".sql"))["sample_print"]
WORKER = "worker-1"
ACTOR = f"worker:{WORKER}"


@pytest.fixture
def conn(module_db: Conn) -> Iterator[Conn]:
    with module_db.transaction(force_rollback=True):
        module_db.execute("select pgmq.purge_queue(%s)", (queues.CLONE,))
        yield module_db


def queued(conn: Conn) -> tuple[dict[str, Any], uuid.UUID, uuid.UUID]:
    """A fresh user's queued attempt, active on its reflection: the attempt, its voice and its reflection."""
    owner = create_user(conn)
    voice, reflection = seed_voice(conn, owner), seed_reflection(conn, owner)
    return seed_attempt(conn, owner, voice, reflection), voice, reflection


def read(conn: Conn) -> dict[str, Any]:
    """The read's rows by attempt id."""
    rows = conn.execute(
        "select message, leased from voicegate.read_and_lease_attempts(%s, 30, 10, %s, 60)", (queues.CLONE, WORKER)
    ).fetchall()
    return {message["attemptId"]: leased for message, leased in rows}


def as_retry(conn: Conn, attempt: dict[str, Any]) -> dict[str, Any]:
    """The attempt back in `queued` after a failed try, as the worker's retry leaves it, and due."""
    return one(
        conn,
        "update voice_clone_attempts set retry_count = 1, last_error_code = 'provider_timeout',"
        " last_error_message = 'the provider did not answer', next_retry_at = now() - interval '1 second'"
        " where id = %s returning *",
        (attempt["id"],),
    )


@pytest.mark.parametrize("retry", [False, True], ids=["first try", "retry"])
def test_the_read_leases_as_the_transition_did(conn: Conn, retry: bool) -> None:
    before, voice_a, reflection_a = queued(conn)
    leased_here, voice_b, reflection_b = queued(conn)
    if retry:
        before, leased_here = as_retry(conn, before), as_retry(conn, leased_here)

    moved = transition(
        conn,
        before["id"],
        before["version"],
        status="processing",
        changes={"lease_owner": WORKER, "lease_seconds": 60},
        actor=ACTOR,
    )
    handed = read(conn)

    assert handed[str(before["id"])] is None, "the attempt the transition leased is no longer queued"
    leased = handed[str(leased_here["id"])]
    got = attempt_outcome(conn, {"id": leased_here["id"], "version": leased["version"]}, voice_b, reflection_b)
    assert got == attempt_outcome(conn, moved, voice_a, reflection_a)
    stored = one(
        conn,
        "select to_jsonb(a) - 'sample_voiceprint' as row from voice_clone_attempts a where id = %s",
        (leased_here["id"],),
    )
    handed_row = {key: value for key, value in leased.items() if key != "likeness_probe"}
    assert handed_row == stored["row"], "the row handed back is the row stored (with the probe's inputs beside it)"
    assert (got["row"]["status"], got["row"]["lease_owner"], got["mirror"]["cloneStatus"]) == (
        "processing",
        WORKER,
        "processing",
    )
    expected_detail = {"late": False, "error": "provider_timeout"} if retry else {"late": False}
    assert got["events"][-1] == ("status", "queued", "processing", ACTOR, expected_detail)


def test_the_read_hands_the_likeness_probe_what_it_would_read(conn: Conn) -> None:
    """The probe's inputs come with the lease (no read of their own): the attempt's samples' print, and the
    language its voice was enrolled in, its sample's else its voice's (backend/clone/likeness.sql's sample_print)."""
    printed, voice, _ = queued(conn)
    conn.execute("update voices set language = 'de' where id = %s", (voice,))
    samples_print = bytes(range(256)) * 3  # a print's 192 float32s
    conn.execute("update voice_clone_attempts set sample_voiceprint = %s where id = %s", (samples_print, printed["id"]))
    sampled, sampled_voice, _ = queued(conn)
    sample = one(
        conn,
        "insert into voice_samples (owner_id, voice_id, consent_id, object_path, sniffed_type, provider, status,"
        " language) values (%s, %s, %s, 'x/original', 'audio/wav', 'local', 'ready', 'fr-CA') returning id",
        (sampled["owner_id"], sampled_voice, seed_consent(conn, sampled["owner_id"])),
    )["id"]
    conn.execute("update voices set language = 'de' where id = %s", (sampled_voice,))
    conn.execute("update voice_clone_attempts set sample_id = %s where id = %s", (sample, sampled["id"]))
    bare, _, _ = queued(conn)

    handed = read(conn)

    assert handed[str(printed["id"])]["likeness_probe"] == {"language": "de", "samples_print": samples_print.hex()}
    assert handed[str(sampled["id"])]["likeness_probe"] == {"language": "fr-CA", "samples_print": None}
    assert handed[str(bare["id"])]["likeness_probe"] == {"language": None, "samples_print": None}
    assert all("sample_voiceprint" not in leased for leased in handed.values())
    for attempt in (printed, sampled, bare):
        inputs = likeness.leased_probe_inputs(handed[str(attempt["id"])])
        expected = one(conn, SAMPLE_PRINT, {"attempt_id": attempt["id"]})
        assert inputs == likeness.ProbeInputs(expected["language"], expected["sample_voiceprint"])


def test_a_move_the_table_no_longer_allows_is_refused_and_nothing_is_read(conn: Conn) -> None:
    attempt, _, _ = queued(conn)
    conn.execute(
        "delete from voicegate.attempt_moves where dimension = 'status' and from_state = 'queued'"
        " and to_state = 'processing'"
    )
    with (
        pytest.raises(psycopg.Error, match="illegal status transition queued -> processing") as refused,
        conn.transaction(),
    ):
        read(conn)
    assert refused.value.sqlstate == "VG422"
    assert one(conn, "select status from voice_clone_attempts where id = %s", (attempt["id"],))["status"] == "queued"
    assert one(conn, "select count(*) as n from pgmq.q_voice_clone_process where read_ct > 0")["n"] == 0


def test_deleting_an_owner_takes_their_attempts_events_with_them(conn: Conn) -> None:
    attempt, _, _ = queued(conn)
    read(conn)
    kept, _, _ = queued(conn)
    count = "select count(*) as n from voice_clone_attempt_events where attempt_id = %s"
    assert one(conn, count, (attempt["id"],))["n"] == 2, "its insert and its lease"

    conn.execute("delete from auth.users where id = %s", (attempt["owner_id"],))

    assert one(conn, count, (attempt["id"],))["n"] == 0
    assert one(conn, count, (kept["id"],))["n"] == 1, "another owner's attempt keeps its events"
    orphans = (
        "select count(*) as n from voice_clone_attempt_events e"
        " where not exists (select from voice_clone_attempts a where a.id = e.attempt_id)"
    )
    assert one(conn, orphans)["n"] == 0
