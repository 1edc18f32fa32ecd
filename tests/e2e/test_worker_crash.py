"""Crash safety with real worker processes: a worker SIGKILLed at each step (after the claim, after the
provider create, after the database write, before the archive) is replaced by a new one that finishes
every attempt, with exactly one provider voice per attempt, nothing stuck and mirror = attempt. A
SIGTERM during a slow provider call lets the call finish and the result land, and the process exits 0."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.text import pieces
from devkit.db import create_user, one
from tests.conftest import server_dir
from tests.e2e.stack import Stack, running_stack
from tests.e2e.test_samples_and_synthesis import cloned_voice

pytestmark = pytest.mark.timeout(120)
ATTEMPTS = 3


@pytest.fixture
def stack(db_dsn: str) -> Iterator[Stack]:
    with server_dir("crash") as workdir, running_stack(db_dsn, Path(workdir)) as running:
        yield running


def assert_exactly_once(stack: Stack) -> None:
    attempts = stack.attempts()
    assert [a["status"] for a in attempts] == ["ready"] * ATTEMPTS, [
        (a["last_error_code"], a["last_error_message"]) for a in attempts
    ]
    assert all(a["runtime_status"] == "synced" and a["preview_status"] == "ready" for a in attempts)
    assert all(a["mirrored"] for a in attempts)
    voice_ids = {a["provider_voice_id"] for a in attempts}
    # One provider voice per attempt: the fake holds exactly the voices the attempts record.
    assert voice_ids == set(stack.fake.voices)
    assert len(stack.fake.voices) == ATTEMPTS


@pytest.mark.parametrize("point", ["after_claim", "after_provider_create", "after_db_write", "before_archive"])
def test_a_worker_killed_at_each_step_is_finished_by_the_next(stack: Stack, point: str) -> None:
    stack.seed_attempts(ATTEMPTS)
    doomed = stack.start_worker(VOICEGATE_FAILPOINTS=point)
    assert doomed.wait(60) == -signal.SIGKILL, stack.worker_log(0)
    assert not stack.all_finished()

    survivor = stack.start_worker()
    stack.wait_for(stack.all_finished, 60, "every attempt to finish after the crash")
    assert_exactly_once(stack)
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(30) == 0, stack.worker_log(1)


def test_sigterm_during_a_slow_provider_call_lets_it_finish(stack: Stack) -> None:
    [attempt_id] = stack.seed_attempts(1)
    stack.fake.faults.latency_s = 2.0
    worker = stack.start_worker()
    stack.wait_for(lambda: stack.fake.requests_to("POST", "/v1/voices/add"), 30, "the create to reach the provider")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, stack.worker_log(0)
    [attempt] = stack.attempts()
    assert str(attempt["id"]) == attempt_id
    assert attempt["status"] == "ready"
    assert attempt["provider_voice_id"] in stack.fake.voices


def test_the_usage_ledger_equals_what_the_provider_was_sent_across_a_worker_killed_mid_job(stack: Stack) -> None:
    text = " ".join(f"This is sentence number {n}, long enough to be a sentence of its own." * 3 for n in range(6))
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        owner = create_user(conn)
        voice_id = cloned_voice(conn, stack.fake, owner)
        job_id = one(
            conn,
            "insert into synthesis_jobs (owner_id, voice_id, input_text) values (%s, %s, %s) returning id",
            (owner, voice_id, text),
        )["id"]
        conn.execute("select pgmq.send('voice_synthesis', jsonb_build_object('jobId', %s::text))", (job_id,))
    stack.fake.faults.latency_s = 0.4
    # The stack's workers lease for 2 s, so the next takes the job over soon after the first is killed.
    doomed = stack.start_worker()
    stack.wait_for(lambda: len(stack.fake.requests_to("POST", "/v1/text-to-speech")) >= 2, 60, "two pieces sent")
    doomed.kill()
    assert doomed.wait(30) == -signal.SIGKILL

    survivor = stack.start_worker()

    def job() -> dict[str, Any]:
        with psycopg.connect(stack.dsn, autocommit=True) as conn:
            return one(conn, "select status, error_code from synthesis_jobs where id = %s", (job_id,))

    stack.wait_for(lambda: job()["status"] in {"succeeded", "failed"}, 60, "the job to end after the kill")
    assert job() == {"status": "succeeded", "error_code": None}
    sent = [request.json()["text"] for request in stack.fake.requests_to("POST", "/v1/text-to-speech")]
    assert len(sent) > len(pieces(text)), "the killed run's pieces were sent, and sent again by the next"
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        counted = one(conn, "select sum(characters) as n from voicegate.usage_events where work_id = %s", (job_id,))[
            "n"
        ]
    assert counted == sum(len(piece) for piece in sent), "never lost, never counted twice"
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(30) == 0, stack.worker_log(1)
