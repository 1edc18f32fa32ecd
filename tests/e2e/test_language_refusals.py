"""With the consumers running: work that reaches a consumer for a `local` voice the engine cannot speak (a
voice enrolled in Chinese before it spoke English only, queued past the request's check) fails for good with
`language_not_supported`, naming the languages it speaks: never retried, never spoken, nothing stored. The
engine's own record of the voice's language counts as much as the voice row's. A cloud provider (Qwen, against
its fake) still clones and speaks Chinese."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from backend.clone.likeness import PROBE_TEXTS
from devkit.audio_corpus import speech_wav
from devkit.db import Conn, one, seed_reflection
from fakes import QwenFake, serve
from fakes.qwen import GENERATION
from tests.e2e.test_samples_and_synthesis import job_settled, sample_settled, upload
from tests.integration.api.conftest import User
from tests.integration.api.test_language_refusals import CHINESE, local_voice, stored_local_voice
from tests.provider_support import QWEN_KEY
from tests.support import seed_attempt, transition

pytestmark = pytest.mark.timeout(120)
REFUSED = "This voice's language is 'zh'. The local provider speaks: en."


async def until_row(
    sql: Conn, query: str, params: tuple[Any, ...], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The row `query` selects once `done` holds for it (at most 60 s)."""
    deadline = time.monotonic() + 60
    while not done(row := one(sql, query, params)):
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.1)
    return row


def objects(sql: Conn, bucket: str) -> int:
    return int(one(sql, "select count(*) as n from storage.objects where bucket_id = %s", (bucket,))["n"])


async def test_a_queued_job_for_a_voice_in_chinese_fails_for_good_unspoken(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    # Its row says Chinese; and one whose row says English while the engine keeps it in Chinese.
    legacy = local_voice(sql, user.id, "zh", "local-zh")
    stored_local_voice(sql, "local-zh", "zh")
    mixed = local_voice(sql, user.id, "en", "local-mixed")
    stored_local_voice(sql, "local-mixed", "zh")
    jobs = []
    for voice_id in (legacy, mixed):
        job = one(
            sql,
            "insert into synthesis_jobs (owner_id, voice_id, input_text) values (%s, %s, 'Hello there.') returning id",
            (user.id, voice_id),
        )["id"]
        sql.execute("select pgmq.send('voice_synthesis', jsonb_build_object('jobId', %s::text))", (job,))
        jobs.append(job)

    client = await worker_client()
    query = "select status, error_code, error_message, retry_count, progress_total from synthesis_jobs where id = %s"
    checked, spoken = [
        await until_row(sql, query, (job,), lambda j: j["status"] in {"succeeded", "failed"}) for job in jobs
    ]

    # Refused when the consumer took it, from the voice row: never started.
    assert checked == {
        "status": "failed",
        "error_code": "language_not_supported",
        "error_message": REFUSED,
        "retry_count": 0,
        "progress_total": None,
    }
    # Refused by the engine, from its own record, before a sound was made.
    assert (spoken["status"], spoken["error_code"], spoken["error_message"], spoken["retry_count"]) == (
        "failed",
        "language_not_supported",
        REFUSED,
        0,
    )
    assert objects(sql, "voice-renders") == 0

    # Streamed, the engine's refusal is the same 422 (the stream had been recorded: it ends failed, empty).
    streamed = await client.post("/api/v1/speech", json={"voiceId": mixed, "text": "Hi."}, headers=user.headers)
    assert streamed.status_code == 422, streamed.text
    assert (streamed.json()["code"], streamed.json()["detail"]) == ("language_not_supported", REFUSED)
    stream = one(sql, "select outcome, error_code, audio_ms from speech_streams")
    assert stream == {"outcome": "failed", "error_code": "language_not_supported", "audio_ms": 0}


async def test_the_preview_of_a_voice_in_chinese_is_refused_not_spoken(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    voice = one(sql, "insert into voices (owner_id, name, language) values (%s, 'Ada', 'zh') returning id", (user.id,))[
        "id"
    ]
    stored_local_voice(sql, "local-zh", "zh")
    attempt = seed_attempt(sql, user.id, voice, seed_reflection(sql, user.id))
    for step in (
        {"status": "processing", "changes": {"lease_owner": "w", "lease_seconds": 60}},
        {"status": "verifying", "lease_owner": "w", "changes": {"provider_voice_id": "local-zh"}},
        {"status": "ready", "lease_owner": "w"},
        {"runtime": "syncing"},
        {"runtime": "synced"},
    ):
        attempt = transition(sql, attempt["id"], attempt["version"], **step)
    assert attempt["preview_status"] == "pending"
    # Only the preview is asked for: the attempt's own clone message (sent on insert) has done its part.
    sql.execute("select pgmq.purge_queue('voice_clone_process')")
    sql.execute(
        "select pgmq.send('voice_preview', jsonb_build_object('type', 'VOICE_PREVIEW', 'attemptId', %s::text,"
        " 'version', %s::int))",
        (attempt["id"], attempt["version"]),
    )

    await worker_client()
    query = "select preview_status, last_error_code, last_error_message from voice_clone_attempts where id = %s"
    refused = await until_row(sql, query, (attempt["id"],), lambda a: a["last_error_code"] is not None)

    assert refused == {
        "preview_status": "pending",
        "last_error_code": "language_not_supported",
        "last_error_message": REFUSED,
    }
    assert objects(sql, "voice-previews") == 0


async def test_a_cloud_provider_clones_and_speaks_what_its_own_list_allows(
    worker_client: Callable[..., Any], make_user: Callable[[], User]
) -> None:
    qwen = QwenFake(QWEN_KEY)
    with serve(qwen) as url:
        client = await worker_client(DASHSCOPE_API_KEY=QWEN_KEY, DASHSCOPE_BASE_URL=url)
        user = make_user()
        accepted = await upload(client, user, speech_wav(), language="zh", provider="qwen")
        assert accepted.status_code == 202, accepted.text
        sample = await sample_settled(client, user, accepted.json()["sampleId"])
        assert sample["status"] == "ready", sample
        job = await client.post(
            "/api/v1/clone", json={"sampleId": sample["sampleId"], "text": CHINESE}, headers=user.headers
        )
        assert job.status_code == 202, job.text
        done = await job_settled(client, user, job.json()["jobId"])

        assert done["status"] == "succeeded", done
        assert [v.language for v in qwen.voices.values()] == ["zh"]
        spoken = [r.json()["input"]["text"] for r in qwen.requests_to("POST", GENERATION)]
        # The likeness probe is spoken in the voice's own language, then the job.
        assert spoken == [PROBE_TEXTS["zh"], CHINESE]
        # What Qwen itself does not take is refused at once, as its adapter would refuse it later.
        unknown = await upload(client, user, speech_wav(), language="xx", provider="qwen")
        assert unknown.status_code == 422, unknown.text
        problem = unknown.json()
        assert (problem["code"], problem["provider"]) == ("language_not_supported", "qwen")
        assert problem["languages"] == ["de", "en", "es", "fr", "it", "ja", "ko", "pt", "ru", "zh"]
