"""A Storage outage under load, met by a running `voicegate worker` that reaches Storage only through a relay
the test cuts for a minute: meanwhile the worker takes no work (no message is read more than once, nothing
fails, nothing is dead-lettered, with the default five reads before a dead letter), it logs the outage
once as it starts and once as it ends, and after it every clone and every synthesis job succeeds. With
`CONSUMER_MODE=http`, the API's Storage outage reaches the worker as that outage, not as a failure."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from backend.errors import StorageUnavailable
from backend.queues import Message
from backend.storage.client import SupabaseObjectStorage
from devkit.audio_corpus import speech_wav
from queue_consumers.handlers import clone_over_http
from standins.dev_tokens import mint_service_key, mint_user_token
from tests.conftest import server_dir
from tests.e2e.relay import relaying
from tests.e2e.stack import Stack, running_stack
from tests.integration.api.conftest import JWT_SECRET, User

pytestmark = pytest.mark.timeout(120)
OUTAGE_S = 60
ATTEMPTS = 3


@pytest.fixture
def stack(db_dsn: str) -> Iterator[Stack]:
    with server_dir("storage-outage") as workdir, running_stack(db_dsn, Path(workdir)) as running:
        yield running


#: The worker's consumers waiting for notifications, in this test's database.
LISTENING = "select pid from pg_stat_activity where datname = current_database() and query like 'LISTEN %'"
#: The messages of the queues whose work needs Storage, as read so far.
READS = "select read_ct from pgmq.q_voice_clone_process union all select read_ct from pgmq.q_voice_synthesis"


def rows(stack: Stack, query: str) -> list[dict[str, Any]]:
    with psycopg.connect(stack.dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]  # test-only literal SQL


def queue_jobs(stack: Stack) -> None:
    """A synthesis job for each voice being cloned, asked by its owner; each waits for its attempt."""
    for attempt in rows(stack, "select voice_id, owner_id from voice_clone_attempts"):
        headers = {"Authorization": f"Bearer {mint_user_token(JWT_SECRET, attempt['owner_id'])}"}
        body = {"voiceId": str(attempt["voice_id"]), "text": "Hello there. The storage came back."}
        job = httpx.post(f"{stack.api_url}/api/v1/clone", json=body, headers=headers, timeout=30)
        assert job.status_code == 202, job.text
        assert job.json()["attemptId"] is not None


def nothing_failed(stack: Stack) -> None:
    assert rows(stack, "select id from voice_clone_attempts where status = 'failed'") == []
    assert rows(stack, "select id from synthesis_jobs where status = 'failed'") == []
    assert rows(stack, "select msg_id from pgmq.q_voice_dead_letter") == []


def all_done(stack: Stack) -> bool:
    jobs = rows(stack, "select status from synthesis_jobs")
    return stack.all_finished() and all(job["status"] == "succeeded" for job in jobs)


def test_storage_out_of_reach_for_a_minute_under_load_fails_nothing(stack: Stack) -> None:
    with relaying(stack.api_url) as storage:
        worker = stack.start_worker(SUPABASE_URL=storage.url, VOICEGATE_QUEUE_MAX_READS="5")
        # Started while Storage is out of reach, a worker refuses to (test_worker_beside_up): this one is
        # running (it connects to the database once it has reached Storage) when the outage begins.
        stack.wait_for(lambda: bool(rows(stack, LISTENING)), 60, "the worker to start")
        storage.cut()
        cut_at = time.monotonic()
        stack.seed_attempts(ATTEMPTS)
        queue_jobs(stack)
        while time.monotonic() - cut_at < OUTAGE_S:
            assert worker.poll() is None, stack.worker_log(0)
            nothing_failed(stack)
            reads = [row["read_ct"] for row in rows(stack, READS)]
            assert max(reads, default=0) <= 1, "a worker that cannot reach Storage takes no work"
            time.sleep(1)  # the outage lasts its minute; this only paces the checks
        storage.restore()
        stack.wait_for(lambda: all_done(stack), 45, "every clone and job to succeed after the outage")
        nothing_failed(stack)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, stack.worker_log(0)

    assert [a["status"] for a in stack.attempts()] == ["ready"] * ATTEMPTS
    assert [j["status"] for j in rows(stack, "select status from synthesis_jobs")] == ["succeeded"] * ATTEMPTS
    log = stack.worker_log(0)
    assert log.count("storage unavailable: ") == 1, log
    assert log.count("storage available again after ") == 1, log


async def test_over_http_the_apis_storage_outage_is_an_outage_not_a_failure(
    worker_client: Callable[..., Any], make_user: Callable[[], User], unreachable_storage: str
) -> None:
    api = await worker_client(consumers=False)
    user = make_user()
    reflection = (await api.post("/v1/reflections", json={"name": "r"}, headers=user.headers)).json()["id"]
    accepted = await api.post(
        f"/v1/reflections/{reflection}/voice/clone",
        data={"consent": "true", "language": "en"},
        files={"file": ("me.wav", speech_wav(), "audio/wav")},
        headers=user.headers,
    )
    assert accepted.status_code == 202, accepted.text
    now = datetime.now(UTC)
    body = {"attemptId": accepted.json()["attemptId"], "reflectionId": reflection}
    message = Message(1, 1, now, now, body, read_at=time.monotonic())
    step = clone_over_http(api, mint_service_key(JWT_SECRET), "http-worker")

    state = api.app.state
    reachable = state.worker_context
    async with SupabaseObjectStorage(unreachable_storage, "service-key", timeout=2) as out_of_reach:
        state.worker_context = dataclasses.replace(reachable, storage=out_of_reach)
        try:
            with pytest.raises(StorageUnavailable):
                await step(message)  # the API answered 503 storage_unavailable
        finally:
            state.worker_context = reachable
