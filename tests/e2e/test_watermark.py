"""Everything voicegate synthesizes carries the watermark, whichever provider spoke it: a voice's preview (a WAV
from `local`, the MP3 ElevenLabs speaks), a job's render (its WAV and the same as MP3) and a speech stream (PCM
and MP3), each read back as a user receives it and found by `backend.watermark.detect`; the natural speech that
was uploaded to clone the voice is not. `POST /api/v1/provenance/check` says both things a file holds: the mark
and the C2PA manifest (the signed render: both; its MP3 copy: the mark alone; a natural clip: neither). On main,
none of them carried the mark and the route did not exist."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from backend.audio.decode import decode_audio
from backend.watermark import THRESHOLD, Detection, detect
from devkit.audio_corpus import speech_wav
from devkit.db import Conn
from devkit.speech_maker import speak
from fakes import ElevenLabsFake, serve
from tests.e2e.conftest import elevenlabs_env
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(180)
CLIPS = Path(__file__).resolve().parents[1] / "clips" / "librispeech"
SPOKEN = "The rain in Spain stays mainly in the plain, and the wind blows over the hills."


async def poll(client: Client, user: User, path: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"stuck: {body}"


async def fetch(client: Client, url: str) -> bytes:
    """A signed Storage URL's object, fetched from the app in-process."""
    response = await client.get("/storage/v1" + url.split("/storage/v1", 1)[1])
    assert response.status_code == 200, response.text
    return response.content


def found(data: bytes) -> Detection:
    decoded = decode_audio(data)
    return detect(decoded.samples, decoded.sample_rate)


async def check(client: Client, user: User, data: bytes, name: str) -> dict[str, Any]:
    """`POST /api/v1/provenance/check`'s answer for ``data``."""
    answer = await client.post("/api/v1/provenance/check", files={"file": (name, data)}, headers=user.headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def speech_pcm(seconds: float, rate: int) -> bytes:
    """espeak-ng speech for the ElevenLabs fake to answer with, ``seconds`` long (at least one frame)."""
    samples = speak(SPOKEN, rate, pitch=40)
    count = max(rate // 10, int(seconds * rate))
    return (np.resize(samples, count) * 32767).astype("<i2").tobytes()


async def everything_is_marked(client: Client, user: User, provider: str, preview_type: str) -> None:
    """Clone a voice with ``provider`` from natural-sounding speech, then check each thing it speaks."""
    sample = speech_wav()
    assert not found(sample).present, "what the user uploaded carries no mark"
    reflection = (await client.post("/v1/reflections", json={"name": "Ada"}, headers=user.headers)).json()["id"]
    cloned = await client.post(
        f"/v1/reflections/{reflection}/voice/clone",
        data={"consent": "true", "language": "en", "provider": provider},
        files={"file": ("me.wav", sample, "audio/wav")},
        headers=user.headers,
    )
    assert cloned.status_code == 202, cloned.text
    state = await poll(
        client, user, f"/v1/reflections/{reflection}/voice", lambda s: s["voice"]["previewStatus"] == "ready"
    )
    preview = await fetch(client, state["previewUrl"])
    assert decode_audio(preview).mime_type == preview_type
    assert found(preview).present, found(preview)

    voice_id = state["voice"]["voiceId"]
    job = await client.post("/api/v1/clone", json={"voiceId": voice_id, "text": SPOKEN}, headers=user.headers)
    assert job.status_code == 202, job.text
    job_id = job.json()["jobId"]
    status = await poll(
        client, user, f"/api/v1/clone/{job_id}/status", lambda j: j["status"] in {"succeeded", "failed"}
    )
    assert status["status"] == "succeeded", status["error"]
    result = (await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)).json()
    render = await fetch(client, result["audioUrl"])
    assert found(render).present
    as_mp3 = await client.get(f"/api/v1/clone/{job_id}/audio", params={"format": "mp3"}, headers=user.headers)
    assert as_mp3.status_code == 200, as_mp3.text
    assert found(as_mp3.content).present

    # The route says both: the signed WAV carries the mark and voicegate's manifest; its MP3 copy the mark alone.
    checked = await check(client, user, render, "render.wav")
    assert checked["watermark"]["present"]
    assert checked["watermark"]["threshold"] == THRESHOLD
    assert checked["c2pa"]["state"] == "trusted"
    assert checked["c2pa"]["voicegate"]["voiceId"] == voice_id
    assert checked["c2pa"]["voicegate"]["provider"] == provider
    copy = await check(client, user, as_mp3.content, "render.mp3")
    assert copy["watermark"]["present"]
    assert copy["c2pa"] == {"state": "unsigned", "failures": [], "signer": None, "voicegate": None}

    for fmt in ("pcm_24000", "mp3"):
        streamed = await client.post(
            "/api/v1/speech", json={"voiceId": voice_id, "text": SPOKEN, "format": fmt}, headers=user.headers
        )
        assert streamed.status_code == 200, streamed.text
        if fmt == "pcm_24000":
            heard = detect(np.frombuffer(streamed.content, dtype="<i2") / 32768.0, 24000)
        else:
            heard = found(streamed.content)
        assert heard.present, (fmt, heard)


async def test_the_local_engines_preview_render_and_streams_carry_the_mark(
    worker_client: Callable[..., Any], make_user: Callable[[], User]
) -> None:
    client = await worker_client()
    await everything_is_marked(client, make_user(), "local", "audio/wav")


async def test_a_cloud_providers_audio_is_marked_on_its_way_out(
    worker_client: Callable[..., Any], make_user: Callable[[], User]
) -> None:
    fake = ElevenLabsFake()
    fake.speech = speech_pcm
    assert not detect(np.frombuffer(speech_pcm(3.0, 24000), dtype="<i2") / 32768.0, 24000).present
    with serve(fake) as url:
        client = await worker_client(**elevenlabs_env(fake, url))
        await everything_is_marked(client, make_user(), "elevenlabs", "audio/mpeg")


async def test_the_provenance_route_finds_neither_in_natural_speech_and_refuses_what_is_not_audio(
    worker_client: Callable[..., Any], make_user: Callable[[], User]
) -> None:
    client = await worker_client(consumers=False)
    user = make_user()
    natural = (CLIPS / "2414" / "2414-128291-0005.flac").read_bytes()

    checked = await check(client, user, natural, "clip.flac")

    assert not checked["watermark"]["present"]
    assert checked["watermark"]["score"] < THRESHOLD
    assert checked["c2pa"] is None, "a FLAC carries no manifest voicegate reads"
    assert (await check(client, user, speech_wav(), "me.wav"))["c2pa"]["state"] == "unsigned"
    not_audio = await client.post(
        "/api/v1/provenance/check", files={"file": ("notes.txt", b"hello there")}, headers=user.headers
    )
    assert (not_audio.status_code, not_audio.json()["code"]) == (415, "unsupported_audio")
    anonymous = await client.post("/api/v1/provenance/check", files={"file": ("clip.flac", natural)})
    assert anonymous.status_code == 401
    other = await client.post(
        "/api/v1/provenance/check", files={"sample": ("clip.flac", natural)}, headers=user.headers
    )
    assert (other.status_code, other.json()["code"]) == (400, "validation_failed")


async def settled(client: Client, user: User, sample_id: str) -> dict[str, Any]:
    """The sample's status once its check ended (the app's consumers run it meanwhile)."""
    return await poll(
        client, user, f"/api/v1/voice-samples/{sample_id}/status", lambda s: s["status"] in {"ready", "failed"}
    )


#: Words of no consent, long enough for a sample (3 s and more).
OTHER_WORDS = "The early train left the station at seven, and the fields outside were white with a thin frost."


async def test_voicegates_own_speech_is_refused_as_a_sample_and_as_a_consent_recording(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client()
    user = make_user()
    made = await client.post(
        "/api/v1/consents", json={"subjectName": "Ada Lovelace", "language": "en"}, headers=user.headers
    )
    assert made.status_code == 201, made.text
    consent = made.json()
    # voicegate's own speech: a local voice, as a job renders it. It will not say the consent's phrase at all.
    sample = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true", "language": "en"},
        files={"file": ("me.wav", speech_wav(), "audio/wav")},
        headers=user.headers,
    )
    assert sample.status_code == 202, sample.text
    phrase = await client.post(
        "/api/v1/clone", json={"sampleId": sample.json()["sampleId"], "text": consent["phrase"]}, headers=user.headers
    )
    assert (phrase.status_code, phrase.json()["code"]) == (422, "consent_phrase"), phrase.text
    job = await client.post(
        "/api/v1/clone",
        json={"sampleId": sample.json()["sampleId"], "text": OTHER_WORDS},
        headers=user.headers,
    )
    assert job.status_code == 202, job.text
    job_id = job.json()["jobId"]
    status = await poll(
        client, user, f"/api/v1/clone/{job_id}/status", lambda j: j["status"] in {"succeeded", "failed"}
    )
    assert status["status"] == "succeeded", status["error"]
    render = (await client.get(f"/api/v1/clone/{job_id}/audio", headers=user.headers)).content
    as_mp3 = (await client.get(f"/api/v1/clone/{job_id}/audio", params={"format": "mp3"}, headers=user.headers)).content

    # As a sample, the WAV and its MP3 copy (no manifest left) alike: refused, recorded as the sample's failure.
    for name, audio in (("clip.wav", render), ("clip.mp3", as_mp3)):
        again = await client.post(
            "/api/v1/voice-samples",
            data={"consent": "true", "language": "en"},
            files={"file": (name, audio)},
            headers=user.headers,
        )
        assert again.status_code == 202, again.text
        refused = await settled(client, user, again.json()["sampleId"])
        assert refused["status"] == "failed", refused
        assert refused["failureReason"].startswith("synthetic_speech: "), refused["failureReason"]

    # As the consent's recording: rejected for the mark before its words are heard, recorded and audited like any
    # other rejection.
    verdict = await client.post(
        f"/api/v1/consents/{consent['consentId']}/recording",
        files={"file": ("phrase.wav", render, "audio/wav")},
        headers=user.headers,
    )
    assert verdict.status_code == 200, verdict.text
    assert (verdict.json()["status"], verdict.json()["reason"]) == ("rejected", "synthetic_speech")
    read = (await client.get(f"/api/v1/consents/{consent['consentId']}", headers=user.headers)).json()
    assert (read["status"], read["reason"]) == ("rejected", "synthetic_speech")
    [(detail,)] = sql.execute(
        "select detail from voicegate.audit_events where subject_type = 'voice_consent' and subject_id = %s"
        " and action = 'consent.rejected'",
        (consent["consentId"],),
    ).fetchall()
    assert detail["reason"] == "synthetic_speech"
