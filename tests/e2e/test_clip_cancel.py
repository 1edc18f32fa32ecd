"""Cancelling a job the worker is speaking, with the consumers in-process against the ElevenLabs fake: the run
that holds the job stops at its next write and stores nothing, and the job stays `canceled`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from backend.synthesis.step import BUCKET
from devkit.db import Conn, one
from fakes import ElevenLabsFake, serve
from tests.e2e.conftest import elevenlabs_env
from tests.e2e.test_provenance import cloned_job
from tests.integration.api.conftest import User
from tests.support import queue_messages

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(180)
TWO_PARTS = "This is the first sentence of the clip, long enough to be a part of its own. " * 3 + (
    "And this is the second part, which the canceled run never speaks. " * 3
)
#: How long the fake takes over each request once the voice exists: the window in which the test cancels.
HOLD_S = 8.0


@pytest.fixture
def fake() -> Iterator[tuple[ElevenLabsFake, str]]:
    provider = ElevenLabsFake()
    with serve(provider) as url:
        yield provider, url


async def until(predicate: Callable[[], Any], what: str, within: float = 60) -> Any:
    deadline = time.monotonic() + within
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return found


async def test_a_job_canceled_while_spoken_stores_nothing(
    worker_client: Callable[..., Any], fake: tuple[ElevenLabsFake, str], make_user: Callable[[], User], sql: Conn
) -> None:
    provider, url = fake
    client: Client = await worker_client(**elevenlabs_env(provider, url))
    user = make_user()
    _, first = await cloned_job(client, user)  # the voice cloned, and its first clip spoken
    assert first["status"] == "succeeded", first
    voice = first["voiceId"]

    provider.faults.latency_s = HOLD_S
    spoken_before = len(provider.requests_to("POST", "/v1/text-to-speech/"))
    accepted = await client.post("/api/v1/clone", json={"voiceId": voice, "text": TWO_PARTS}, headers=user.headers)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["jobId"]
    await until(lambda: len(provider.requests_to("POST", "/v1/text-to-speech/")) > spoken_before, "the first part")
    row = one(sql, "select status, progress_total, lease_owner from synthesis_jobs where id = %s", (job,))
    assert row["status"] == "processing"
    assert row["progress_total"] >= 2
    assert row["lease_owner"] is not None

    canceled = await client.post(f"/api/v1/clone/{job}/cancel", headers=user.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    # The run ends once the fake answers its part: its progress is fenced out and its message archived.
    # (The first job's own messages are not waited for: one may lie in the queue, invisible, until its delay.)
    await until(
        lambda: not any(m["message"].get("jobId") == job for m in queue_messages(sql, "voice_synthesis")),
        "the run to end",
        within=HOLD_S + 60,
    )
    provider.faults.latency_s = 0.0

    row = one(sql, "select status, progress_done, output_object_path from synthesis_jobs where id = %s", (job,))
    assert row == {"status": "canceled", "progress_done": 0, "output_object_path": None}
    assert len(provider.requests_to("POST", "/v1/text-to-speech/")) == spoken_before + 1, "the second part unspoken"
    render = client.app.state.settings.data_dir / "storage" / BUCKET / str(user.id) / "renders" / f"{job}.wav"
    assert not render.exists()
    assert (
        sql.execute("select 1 from voicegate.service_written_objects where name like %s", (f"%{job}%",)).fetchone()
        is None
    )
    result = await client.get(f"/api/v1/clone/{job}/result", headers=user.headers)
    assert (result.status_code, result.json()["code"]) == (409, "synthesis_not_finished")
