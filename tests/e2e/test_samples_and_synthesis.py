"""The PRD flow over HTTP with the consumers running: upload a sample → its check on the
`voice_sample_process` queue → status `ready` with the quality report → clone text → the job on
`voice_synthesis` → `succeeded` → the result URL downloads a WAV whose length grows with the text.
Also: refusals, another user's view, deletion, and a provider that keeps timing out."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from backend.audio.measure import detect_speech
from backend.cpu import CpuExecutor
from backend.synthesis.step import process_synthesis
from backend.text import pieces
from devkit.audio_corpus import noise, speech_wav, wav_bytes
from devkit.db import Conn, one, seed_consent
from fakes import ElevenLabsFake, serve
from fakes.core import Fault
from fakes.elevenlabs import ElevenVoice
from tests.e2e.conftest import elevenlabs_env
from tests.integration.api.conftest import User
from tests.integration.conftest import open_lifecycle

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(120)
SHORT_TEXT = "Hello there."
LONG_TEXT = (
    "Hello there. This sentence is a good deal longer than the first one, so the audio made from it"
    " has to last several times as long when it is spoken at the same pace."
)


async def upload(client: Client, user: User, data: bytes, **fields: str) -> Any:
    form = {"consent": "true", "language": "en", **fields}
    return await client.post(
        "/api/v1/voice-samples", data=form, files={"file": ("me.wav", data, "audio/wav")}, headers=user.headers
    )


async def until(client: Client, user: User, path: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll `path` until `done` holds for its JSON (the consumers run in the app meanwhile)."""
    deadline = time.monotonic() + 60
    while True:
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"stuck: {body}"


async def sample_settled(client: Client, user: User, sample_id: str) -> dict[str, Any]:
    return await until(
        client, user, f"/api/v1/voice-samples/{sample_id}/status", lambda s: s["status"] in {"ready", "failed"}
    )


async def job_settled(client: Client, user: User, job_id: str) -> dict[str, Any]:
    return await until(client, user, f"/api/v1/clone/{job_id}/status", lambda j: j["status"] in {"succeeded", "failed"})


async def spoken(client: Client, user: User, job_id: str) -> tuple[np.ndarray[Any, Any], int]:
    """The job's audio, fetched through its signed result URL, decoded as a WAV."""
    result = await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)
    assert result.status_code == 200, result.text
    body = result.json()
    assert (body["mimeType"], body["expiresIn"]) == ("audio/wav", 300)
    url = body["audioUrl"]
    # The public Storage address of the app's settings (VOICEGATE_HOST:PORT), in the owner's folder.
    assert url.startswith(f"http://127.0.0.1:8000/storage/v1/object/sign/voice-renders/{user.id}/renders/{job_id}.wav")
    audio = await client.get("/storage/v1" + url.split("/storage/v1", 1)[1])
    assert audio.status_code == 200
    with wave.open(io.BytesIO(audio.content)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        rate = reader.getframerate()
        frames = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return frames.astype(np.float32) / 32768, rate


def objects(sql: Conn, prefix: str) -> set[str]:
    rows = sql.execute("select bucket_id || '/' || name from storage.objects where name like %s", (prefix + "%",))
    return {row[0] for row in rows}


async def test_upload_check_clone_and_listen(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client()
    user = make_user()

    data = speech_wav(8.0)
    with wave.open(io.BytesIO(data)) as reader:
        uploaded_s = reader.getnframes() / reader.getframerate()
    accepted = await upload(client, user, data, transcript="Hello, this is my voice.")
    assert accepted.status_code == 202, accepted.text
    sample_id = accepted.json()["sampleId"]
    assert (accepted.json()["status"], accepted.json()["provider"]) == ("pending", "local")

    sample = await sample_settled(client, user, sample_id)
    assert sample["status"] == "ready", sample["failureReason"]
    quality = sample["quality"]
    assert (quality["mimeType"], quality["sampleRate"], quality["channels"]) == ("audio/wav", 48000, 1)
    assert quality["durationS"] == pytest.approx(uploaded_s, abs=0.01)
    assert quality["speechRatio"] > 0.3
    assert quality["snrDb"] > 20
    assert quality["verdict"] in {"good", "usable"}
    assert quality["loudnessLufs"] is not None
    assert quality["truePeakDbtp"] is not None
    assert sample["sampleRate"] == 24000
    assert sample["channels"] == 1
    assert 0 < sample["durationMs"] < uploaded_s * 1000 - 500  # the cleaned copy: silence trimmed
    folder = f"{user.id}/samples/{sample_id}/"
    assert objects(sql, folder) == {f"voice-samples/{folder}original", f"voice-samples/{folder}processed.wav"}

    short = await client.post("/api/v1/clone", json={"sampleId": sample_id, "text": SHORT_TEXT}, headers=user.headers)
    assert short.status_code == 202, short.text
    first = short.json()
    assert first["status"] == "queued"
    assert first["attemptId"] is not None
    done = await job_settled(client, user, first["jobId"])
    assert done["status"] == "succeeded", done["error"]
    assert (done["voiceId"], done["sampleId"], done["error"]) == (first["voiceId"], sample_id, None)
    short_audio, rate = await spoken(client, user, first["jobId"])
    assert detect_speech(short_audio, rate).seconds > 0.3

    # The sample now has its voice: a second job speaks with it directly, nothing is cloned again.
    assert (await sample_settled(client, user, sample_id))["voiceId"] == first["voiceId"]
    long = await client.post("/api/v1/clone", json={"sampleId": sample_id, "text": LONG_TEXT}, headers=user.headers)
    assert long.status_code == 202, long.text
    assert (long.json()["voiceId"], long.json()["attemptId"]) == (first["voiceId"], None)
    assert (await job_settled(client, user, long.json()["jobId"]))["status"] == "succeeded"
    long_audio, _ = await spoken(client, user, long.json()["jobId"])
    assert len(long_audio) > 3 * len(short_audio)
    assert one(sql, "select count(*) as n from voice_clone_attempts")["n"] == 1

    by_voice = await client.post(
        "/api/v1/clone", json={"voiceId": first["voiceId"], "text": SHORT_TEXT}, headers=user.headers
    )
    assert by_voice.status_code == 202, by_voice.text
    assert (await job_settled(client, user, by_voice.json()["jobId"]))["status"] == "succeeded"
    assert one(sql, "select count(*) as n from voices where owner_id = %s", (user.id,))["n"] == 1


async def test_a_refused_sample_says_why_and_cannot_be_cloned(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client()
    user = make_user()
    hiss = wav_bytes(noise(6.0, rms=0.05))

    accepted = await upload(client, user, hiss)
    assert accepted.status_code == 202
    sample = await sample_settled(client, user, accepted.json()["sampleId"])

    assert (sample["status"], sample["failureReason"]) == ("failed", "no speech detected")
    assert sample["quality"]["speechRatio"] < 0.2
    assert sample["quality"]["verdict"] == "poor"
    refused = await client.post(
        "/api/v1/clone", json={"sampleId": accepted.json()["sampleId"], "text": "hi"}, headers=user.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "sample_rejected")
    assert "no speech detected" in refused.json()["detail"]
    assert one(sql, "select count(*) as n from synthesis_jobs")["n"] == 0
    assert one(sql, "select count(*) as n from voices")["n"] == 0


@pytest.mark.parametrize(
    ("fields", "data", "status", "code"),
    [
        ({"consent": "false"}, None, 400, "consent_required"),
        ({}, b"just some text, renamed to me.wav\n" * 20, 415, "unsupported_audio_format"),
        ({"provider": "qwen"}, None, 422, "provider_not_configured"),
        ({"colour": "blue"}, None, 400, "validation_failed"),
    ],
)
async def test_bad_uploads_are_refused_and_store_nothing(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    tmp_path: Path,
    fields: dict[str, str],
    data: bytes | None,
    status: int,
    code: str,
) -> None:
    client = await worker_client(consumers=False)
    user = make_user()

    refused = await upload(client, user, data or speech_wav(), **fields)

    assert (refused.status_code, refused.json()["code"]) == (status, code)
    assert one(sql, "select count(*) as n from voice_samples")["n"] == 0
    assert one(sql, "select count(*) as n from voice_consents")["n"] == 0
    assert one(sql, "select count(*) as n from storage.objects")["n"] == 0
    assert one(sql, "select count(*) as n from pgmq.q_voice_sample_process")["n"] == 0
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]


async def test_bad_clone_requests_get_clear_errors(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client(consumers=False)
    user, other = make_user(), make_user()
    sample_id = (await upload(client, user, speech_wav())).json()["sampleId"]

    async def clone(body: dict[str, Any], who: User = user) -> tuple[int, str]:
        response = await client.post("/api/v1/clone", json=body, headers=who.headers)
        return response.status_code, response.json()["code"]

    assert await clone({"text": "hi"}) == (400, "validation_failed")
    assert await clone({"sampleId": sample_id, "voiceId": sample_id, "text": "hi"}) == (400, "validation_failed")
    assert await clone({"sampleId": sample_id, "text": "   "}) == (400, "validation_failed")
    assert await clone({"sampleId": sample_id, "text": "x" * 5001}) == (400, "validation_failed")
    assert await clone({"sampleId": sample_id, "text": "hi"}, other) == (404, "not_found")
    assert await clone({"voiceId": sample_id, "text": "hi"}) == (404, "not_found")
    assert one(sql, "select count(*) as n from synthesis_jobs")["n"] == 0

    accepted = await client.post("/api/v1/clone", json={"sampleId": sample_id, "text": "hi"}, headers=user.headers)
    job_id = accepted.json()["jobId"]
    for path in (f"/api/v1/clone/{job_id}/status", f"/api/v1/clone/{job_id}/result"):
        assert (await client.get(path, headers=other.headers)).status_code == 404
    for path in (f"/api/v1/voice-samples/{sample_id}/status",):
        assert (await client.get(path, headers=other.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/voice-samples/{sample_id}", headers=other.headers)).status_code == 404
    early = await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)
    assert (early.status_code, early.json()["code"]) == (409, "synthesis_not_finished")


async def test_deleting_a_sample_purges_both_objects_at_once(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    client = await worker_client()
    user = make_user()
    sample_id = (await upload(client, user, speech_wav())).json()["sampleId"]
    assert (await sample_settled(client, user, sample_id))["status"] == "ready"
    folder = f"{user.id}/samples/{sample_id}/"
    assert len(objects(sql, folder)) == 2

    deleted = await client.delete(f"/api/v1/voice-samples/{sample_id}", headers=user.headers)

    assert deleted.status_code == 204
    assert objects(sql, folder) == set()
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file() and sample_id in str(p)]
    audit = one(sql, "select actor, action, detail from voicegate.audit_events where subject_id = %s", (sample_id,))
    assert (audit["actor"], audit["action"]) == (f"user:{user.id}", "sample.purge")
    assert sorted(audit["detail"]["removed"]) == [f"{folder}original", f"{folder}processed.wav"]
    gone = await client.get(f"/api/v1/voice-samples/{sample_id}/status", headers=user.headers)
    assert gone.status_code == 404
    assert (await client.delete(f"/api/v1/voice-samples/{sample_id}", headers=user.headers)).status_code == 404


@pytest.mark.parametrize(("failures", "status"), [(4, "succeeded"), (8, "failed")])
async def test_a_provider_timeout_is_retried_once_then_inference_failed(
    worker_client: Callable[..., Any], make_user: Callable[[], User], failures: int, status: str
) -> None:
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        # No likeness probe: the only text-to-speech calls are the job's, each of which the faults below meet.
        client = await worker_client(**elevenlabs_env(provider, url), VOICEGATE_LIKENESS_PROBE="off")
        user = make_user()
        sample_id = (await upload(client, user, speech_wav(seed=3))).json()["sampleId"]
        assert (await sample_settled(client, user, sample_id))["status"] == "ready"
        # 504 Gateway Timeout on every text-to-speech call: each try spends the HTTP layer's 4 attempts.
        provider.faults.fail_next(Fault("status", 504, path_prefix="/v1/text-to-speech"), times=failures)

        accepted = await client.post(
            "/api/v1/clone", json={"sampleId": sample_id, "text": SHORT_TEXT}, headers=user.headers
        )
        job = await job_settled(client, user, accepted.json()["jobId"])

        assert job["status"] == status
        assert len(provider.requests_to("POST", "/v1/text-to-speech")) == min(failures, 8) + (status == "succeeded")
        if status == "failed":
            assert job["error"]["code"] == "inference_failed"
            assert job["error"]["message"].startswith("inference failed")
            refused = await client.get(f"/api/v1/clone/{accepted.json()['jobId']}/result", headers=user.headers)
            assert (refused.status_code, refused.json()["code"]) == (409, "synthesis_failed")
        else:
            # ElevenLabs answers MP3; the result is still a WAV.
            audio, rate = await spoken(client, user, accepted.json()["jobId"])
            assert len(audio) / rate > 0.2


async def test_the_maintenance_sweep_purges_expired_samples_and_leaves_fresh_ones(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    client = await worker_client(VOICEGATE_SAMPLE_RETENTION_DAYS="7", VOICEGATE_MAINTENANCE_INTERVAL="0.2")
    user = make_user()
    expiring, fresh = [(await upload(client, user, speech_wav(seed=n))).json() for n in (4, 5)]
    for accepted in (expiring, fresh):
        assert (await sample_settled(client, user, accepted["sampleId"]))["status"] == "ready"
    kept = one(
        sql, "select expires_at - created_at as retention from voice_samples where id = %s", (fresh["sampleId"],)
    )
    assert kept["retention"].days == 7

    sql.execute(
        "update voice_samples set expires_at = now() - interval '1 second' where id = %s", (expiring["sampleId"],)
    )
    deadline = time.monotonic() + 30
    while one(sql, "select count(*) as n from voice_samples where id = %s", (expiring["sampleId"],))["n"]:
        assert time.monotonic() < deadline, "the sweep did not purge the expired sample"
        await asyncio.sleep(0.1)  # a poll, not a busy loop taking the CPU the sweep needs

    gone = f"{user.id}/samples/{expiring['sampleId']}/"
    assert objects(sql, gone) == set()
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file() and expiring["sampleId"] in str(p)]
    audit = one(sql, "select actor, detail from voicegate.audit_events where subject_id = %s", (expiring["sampleId"],))
    assert (audit["actor"], audit["detail"]["reason"]) == ("maintenance", "expired")
    assert sorted(audit["detail"]["removed"]) == [f"{gone}original", f"{gone}processed.wav"]
    left = f"{user.id}/samples/{fresh['sampleId']}/"
    assert objects(sql, left) == {f"voice-samples/{left}original", f"voice-samples/{left}processed.wav"}
    status = await client.get(f"/api/v1/voice-samples/{fresh['sampleId']}/status", headers=user.headers)
    assert status.json()["status"] == "ready"


async def test_an_idempotency_key_replays_the_upload_and_the_job(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client(consumers=False)
    user = make_user()
    keyed = {**user.headers, "Idempotency-Key": "sample-1"}
    files = {"file": ("me.wav", speech_wav(), "audio/wav")}

    first = await client.post("/api/v1/voice-samples", data={"consent": "true"}, files=files, headers=keyed)
    again = await client.post("/api/v1/voice-samples", data={"consent": "true"}, files=files, headers=keyed)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert one(sql, "select count(*) as n from voice_samples")["n"] == 1
    assert one(sql, "select count(*) as n from pgmq.q_voice_sample_process")["n"] == 1

    body = {"sampleId": first.json()["sampleId"], "text": SHORT_TEXT}
    job_headers = {**user.headers, "Idempotency-Key": "job-1"}
    job = await client.post("/api/v1/clone", json=body, headers=job_headers)
    replay = await client.post("/api/v1/clone", json=body, headers=job_headers)
    other = await client.post("/api/v1/clone", json={**body, "text": LONG_TEXT}, headers=job_headers)

    assert (job.status_code, replay.status_code, replay.json()) == (202, 202, job.json())
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert one(sql, "select count(*) as n from synthesis_jobs")["n"] == 1
    assert one(sql, "select count(*) as n from voice_clone_attempts")["n"] == 1


async def test_a_long_job_reports_progress_part_by_part(
    worker_client: Callable[..., Any], make_user: Callable[[], User]
) -> None:
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        # No likeness probe: every text-to-speech call is one of the job's pieces.
        client = await worker_client(**elevenlabs_env(provider, url), VOICEGATE_LIKENESS_PROBE="off")
        user = make_user()
        sample_id = (await upload(client, user, speech_wav(seed=4))).json()["sampleId"]
        assert (await sample_settled(client, user, sample_id))["status"] == "ready"
        text = " ".join(f"This is sentence number {n}, long enough to be a sentence of its own." * 3 for n in range(6))
        expected = pieces(text)
        assert len(expected) >= 4
        # Each text-to-speech call takes a moment, so the job is seen part-way.
        provider.faults.latency_s = 0.3

        job_id = (
            await client.post("/api/v1/clone", json={"sampleId": sample_id, "text": text}, headers=user.headers)
        ).json()["jobId"]
        running = await until(
            client,
            user,
            f"/api/v1/clone/{job_id}/status",
            lambda j: j["status"] == "processing" and j["progress"] is not None and j["progress"]["done"] > 0,
        )
        assert running["progress"]["total"] == len(expected)
        assert running["progress"]["done"] < len(expected)
        assert running["progress"]["unit"] == "parts"
        done = await job_settled(client, user, job_id)

        assert done["status"] == "succeeded", done
        assert done["progress"] == {"done": len(expected), "total": len(expected), "unit": "parts"}
        spoken_texts = [request.json()["text"] for request in provider.requests_to("POST", "/v1/text-to-speech")]
        assert spoken_texts == expected
        audio, rate = await spoken(client, user, job_id)
        assert len(audio) / rate > len(expected)  # every part was spoken and kept


def cloned_voice(sql: Conn, provider: ElevenLabsFake, owner: Any) -> str:
    """A ready voice of `owner` whose ElevenLabs voice the fake holds (as a finished clone leaves it)."""
    voice_id = f"v{owner.hex[:19]}"
    provider.voices[voice_id] = ElevenVoice(voice_id, "Ada", None, {}, [])
    voice = one(
        sql,
        "insert into voices (owner_id, name, status, tts_provider, provider_voice_id, consent_id)"
        " values (%s, 'Ada', 'ready', 'elevenlabs', %s, %s) returning id",
        (owner, voice_id, seed_consent(sql, owner)),
    )
    return str(voice["id"])


def spoken_texts(provider: ElevenLabsFake) -> list[str]:
    return [request.json()["text"] for request in provider.requests_to("POST", "/v1/text-to-speech")]


async def progress_until_settled(client: Client, user: User, job_id: str) -> tuple[dict[str, Any], list[int]]:
    """The job once it ended, and every `done` count its status showed on the way."""
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while True:
        job = (await client.get(f"/api/v1/clone/{job_id}/status", headers=user.headers)).json()
        if job["progress"] is not None and (not seen or seen[-1] != job["progress"]["done"]):
            seen.append(job["progress"]["done"])
        if job["status"] in {"succeeded", "failed"}:
            return job, seen
        assert time.monotonic() < deadline, f"stuck: {job}"
        await asyncio.sleep(0.05)


async def test_a_job_outliving_its_visibility_with_a_second_message_speaks_each_part_once(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        # Visibility 1 s and lease 2 s: the job below outlives each several times over.
        client = await worker_client(
            VOICEGATE_QUEUE_VT="1", VOICEGATE_LEASE_SECONDS="2", **elevenlabs_env(provider, url)
        )
        user = make_user()
        voice_id = cloned_voice(sql, provider, user.id)
        text = " ".join(f"This is sentence number {n}, long enough to be a sentence of its own." * 3 for n in range(6))
        expected = pieces(text)
        provider.faults.latency_s = 0.6
        job_id = (
            await client.post("/api/v1/clone", json={"voiceId": voice_id, "text": text}, headers=user.headers)
        ).json()["jobId"]
        await until(
            client,
            user,
            f"/api/v1/clone/{job_id}/status",
            lambda j: j["status"] == "processing" and j["progress"] is not None and j["progress"]["done"] > 0,
        )
        # Second messages for the running job, as its own re-check or its attempt's wake-up sends them.
        for _ in range(2):
            sql.execute("select pgmq.send('voice_synthesis', jsonb_build_object('jobId', %s::text))", (job_id,))

        done, seen = await progress_until_settled(client, user, job_id)

        assert done["status"] == "succeeded", done
        assert seen == sorted(seen), f"the progress went back: {seen}"
        assert seen[-1] == len(expected)
        assert spoken_texts(provider) == expected, "every part is spoken once, by one run"
        lease = one(sql, "select lease_owner, lease_expires_at from synthesis_jobs where id = %s", (job_id,))
        assert lease == {"lease_owner": None, "lease_expires_at": None}


async def test_a_job_left_by_a_dead_worker_is_taken_over_once_its_lease_runs_out(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        client = await worker_client(**elevenlabs_env(provider, url))
        user = make_user()
        voice_id = cloned_voice(sql, provider, user.id)
        # Spoken to part 2 of 3 by a worker that died with 3 s of its lease left, its message still queued.
        job = one(
            sql,
            "insert into synthesis_jobs (owner_id, voice_id, input_text, status, progress_done, progress_total,"
            " lease_owner, lease_expires_at) values (%s, %s, 'One. Two. Three.', 'processing', 2, 3,"
            " 'dead-worker/1', now() + interval '3 seconds') returning id, lease_expires_at",
            (user.id, voice_id),
        )
        sql.execute("select pgmq.send('voice_synthesis', jsonb_build_object('jobId', %s::text))", (job["id"],))

        done, _ = await progress_until_settled(client, user, str(job["id"]))

        assert done["status"] == "succeeded", done
        assert datetime.fromisoformat(done["finishedAt"]) > job["lease_expires_at"], "not while the lease lived"
        assert spoken_texts(provider) == pieces("One. Two. Three."), "spoken again from its start, once"


async def test_a_job_a_run_of_this_worker_could_not_give_up_is_taken_again_by_that_worker_at_once(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, make_user: Callable[[], User], sql: Conn
) -> None:
    text = "One. Two. Three."
    provider = ElevenLabsFake(max_voices=100)
    with serve(provider) as url:
        async with open_lifecycle(cpu, db_dsn, tmp_path, **elevenlabs_env(provider, url)) as ctx:
            user = make_user()
            voice_id = cloned_voice(sql, provider, user.id)

            def job(lease_owner: str | None) -> Any:
                status = "queued" if lease_owner is None else "processing"
                return one(
                    sql,
                    "insert into synthesis_jobs (owner_id, voice_id, input_text, status, lease_owner, lease_expires_at)"
                    " values (%s, %s, %s, %s, %s, case when %s then now() + interval '60 seconds' end)"
                    " returning id",
                    (user.id, voice_id, text, status, lease_owner, lease_owner is not None),
                )["id"]

            # Left mid-job with most of a 60 s lease, as a run that met an outage leaves its job.
            mine, theirs = job("w1/gone"), job("w2/gone")
            taken = await process_synthesis(ctx, mine, "w1")
            left = await process_synthesis(ctx, theirs, "w1")

            # A run of this worker that is still speaking keeps its job from a second delivery.
            provider.faults.latency_s = 1.0
            running = job(None)
            first = asyncio.create_task(process_synthesis(ctx, running, "w1"))
            deadline = time.monotonic() + 30
            while one(sql, "select status from synthesis_jobs where id = %s", (running,))["status"] != "processing":
                assert time.monotonic() < deadline, "the first run never took its job"
                await asyncio.sleep(0.02)
            second = await process_synthesis(ctx, running, "w1")
            finished = await asyncio.wait_for(first, 30)

    assert taken.status == "succeeded", taken
    assert left.status == "processing", "another worker's run may still be speaking it"
    assert left.retry_at is not None
    assert left.retry_at - datetime.now(left.retry_at.tzinfo) > timedelta(seconds=50)
    assert (second.status, finished.status) == ("processing", "succeeded")
    assert spoken_texts(provider) == pieces(text) * 2, "the left job and the running one, each spoken once"
