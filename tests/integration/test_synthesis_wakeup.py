"""A synthesis job waiting for its voice's clone attempt is woken by the attempt's end, in the
transaction that ends it (the `voice_clone_attempts_settled` trigger): one `voice_synthesis`
message per waiting job, none for jobs that are not waiting or while the attempt is still open."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from devkit.db import create_user
from tests.support import queue_messages, seed_attempt, seed_voice, transition


def waiting_job(db: psycopg.Connection[Any], owner: uuid.UUID, voice: uuid.UUID, attempt: uuid.UUID | None) -> str:
    row = db.execute(
        "insert into synthesis_jobs (owner_id, voice_id, attempt_id, input_text) values (%s, %s, %s, 'hi')"
        " returning id",
        (owner, voice, attempt),
    ).fetchone()
    assert row is not None
    return str(row[0])


def woken(db: psycopg.Connection[Any]) -> list[str]:
    return sorted(m["message"]["jobId"] for m in queue_messages(db, "voice_synthesis"))


@pytest.mark.parametrize("end", ["ready", "failed"])
def test_the_end_of_the_attempt_wakes_its_waiting_jobs(db: psycopg.Connection[Any], end: str) -> None:
    owner = create_user(db)
    voice = seed_voice(db, owner)
    attempt = seed_attempt(db, owner, voice, None, preview_required=False)
    other = seed_attempt(db, owner, seed_voice(db, owner, "other"), None, preview_required=False)
    waiting = sorted(waiting_job(db, owner, voice, attempt["id"]) for _ in range(2))
    waiting_job(db, owner, voice, other["id"])  # waits for another attempt
    finished = waiting_job(db, owner, voice, attempt["id"])
    db.execute("update synthesis_jobs set status = 'failed', error_code = 'x' where id = %s", (finished,))

    processing = transition(
        db, attempt["id"], attempt["version"], status="processing", changes={"lease_owner": "w", "lease_seconds": 60}
    )
    assert woken(db) == []  # still open: nobody is woken

    if end == "ready":
        verifying = transition(
            db,
            attempt["id"],
            processing["version"],
            status="verifying",
            lease_owner="w",
            changes={"provider_voice_id": "pv-1"},
        )
        transition(db, attempt["id"], verifying["version"], status="ready", lease_owner="w")
    else:
        transition(
            db,
            attempt["id"],
            processing["version"],
            status="failed",
            lease_owner="w",
            changes={"last_error_code": "no_speech", "last_error_message": "no speech detected"},
        )

    assert woken(db) == waiting
