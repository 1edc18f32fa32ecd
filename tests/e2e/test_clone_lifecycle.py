"""The whole clone lifecycle over HTTP with the queue consumers running: upload a sample → attempt →
ready → runtime synced → preview ready → preview completed → launch 201, with the reflection's mirror
equal to its active attempt at every step (both consumer modes, the same code behind them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from devkit.audio_corpus import speech_wav
from devkit.db import Conn, one
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(120)


async def clone_upload(client: Client, user: User, reflection_id: str, data: bytes, **fields: str) -> httpx.Response:
    form = {"consent": "true", "language": "en", "transcript": "Hello, this is my voice.", **fields}
    return await client.post(
        f"/v1/reflections/{reflection_id}/voice/clone",
        data=form,
        files={"file": ("me.wav", data, "audio/wav")},
        headers=user.headers,
    )


def local_path(upload_url: str) -> str:
    """A signed upload URL as a path on the in-process test client (same app, same Storage)."""
    return "/storage/v1" + upload_url.split("/storage/v1", 1)[1]


def mirror_matches_active_attempt(sql: Conn, reflection_id: str) -> bool:
    return one(
        sql,
        "select r.voice = voicegate.attempt_mirror(a) as same from reflections r"
        " join voice_clone_attempts a on a.reflection_id = r.id and a.is_active where r.id = %s",
        (reflection_id,),
    )["same"]


async def follow_until(
    client: Client, user: User, sql: Conn, reflection_id: str, done: Callable[[dict[str, Any]], bool]
) -> list[tuple[str, str, str]]:
    """Poll the voice state until `done`; return each distinct (clone, runtime, preview) state seen,
    checking the mirror against the active attempt every time."""
    seen: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + 60
    while True:
        state = (await client.get(f"/v1/reflections/{reflection_id}/voice", headers=user.headers)).json()
        voice = state["voice"]
        step = (voice["cloneStatus"], voice["runtimeStatus"], voice["previewStatus"])
        if not seen or seen[-1] != step:
            seen.append(step)
        assert mirror_matches_active_attempt(sql, reflection_id)
        if done(state):
            return seen
        assert voice["cloneStatus"] != "failed", voice["lastError"]
        assert time.monotonic() < deadline, f"stuck at {step}"


def events(sql: Conn, attempt_id: str, dimension: str) -> list[tuple[str | None, str]]:
    rows = sql.execute(
        "select from_state, to_state from voice_clone_attempt_events where attempt_id = %s and dimension = %s"
        " order by id",
        (attempt_id, dimension),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


@pytest.mark.parametrize("mode", ["inprocess", "http"])
async def test_sample_to_launch(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, mode: str
) -> None:
    client = await worker_client(CONSUMER_MODE=mode)
    alice = make_user()
    reflection = (await client.post("/v1/reflections", json={"name": "Ada"}, headers=alice.headers)).json()
    rid = reflection["id"]

    accepted = await clone_upload(client, alice, rid, speech_wav())
    assert accepted.status_code == 202, accepted.text
    attempt_id = accepted.json()["attemptId"]

    blocked = await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)
    assert blocked.status_code == 409
    assert "clone_not_ready" in blocked.json()["blockingReasons"]

    seen = await follow_until(client, alice, sql, rid, lambda s: s["voice"]["previewStatus"] == "ready")
    assert seen[-1] == ("ready", "synced", "ready")
    assert events(sql, attempt_id, "status") == [
        (None, "queued"),
        ("queued", "processing"),
        ("processing", "verifying"),
        ("verifying", "ready"),
    ]
    assert events(sql, attempt_id, "runtime") == [("pending", "syncing"), ("syncing", "synced")]
    assert events(sql, attempt_id, "preview") == [("pending", "generating"), ("generating", "ready")]

    state = (await client.get(f"/v1/reflections/{rid}/voice", headers=alice.headers)).json()
    assert state["blockingReasons"] == ["preview_required"]
    # A URL the client can reach: the public Storage address, not the in-process one.
    assert state["previewUrl"].startswith("http://127.0.0.1:8000/storage/v1/object/sign/voice-previews/")
    preview = await client.get(state["previewUrl"])
    assert preview.status_code == 200
    assert preview.content[:4] == b"RIFF"
    assert len(preview.content) > 24000  # about a second of 24 kHz 16-bit speech, at least

    sample = one(sql, "select status, processed_object_path, quality_report from voice_samples")
    assert sample["status"] == "ready"
    assert sample["processed_object_path"].endswith("/processed.wav")
    assert sample["quality_report"]["durationS"] > 3

    voice = one(sql, "select status, tts_provider, provider_voice_id from voices")
    attempt = one(sql, "select provider_voice_id, enrolment_key from voice_clone_attempts")
    assert voice == {"status": "ready", "tts_provider": "local", "provider_voice_id": attempt["provider_voice_id"]}
    assert attempt["enrolment_key"] == f"vg-{attempt_id}"

    completed = await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)
    assert completed.status_code == 200, completed.text
    launched = await client.post(f"/v1/reflections/{rid}/sessions", headers=alice.headers)
    assert launched.status_code == 201, launched.text
    assert launched.json()["attemptId"] == attempt_id
    assert one(sql, "select count(*) as n from pgmq.q_voice_clone_process")["n"] == 0
    assert one(sql, "select count(*) as n from pgmq.q_voice_preview")["n"] == 0


async def test_a_sample_without_speech_fails_the_attempt_with_the_reason(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    from devkit.audio_corpus import noise, wav_bytes  # noqa: PLC0415

    client = await worker_client()
    bob = make_user()
    rid = (await client.post("/v1/reflections", json={"name": "Bob"}, headers=bob.headers)).json()["id"]
    accepted = await clone_upload(client, bob, rid, wav_bytes(noise(5.0, 0.05)))
    assert accepted.status_code == 202, accepted.text

    deadline = time.monotonic() + 30
    while (voice := (await client.get(f"/v1/reflections/{rid}/voice", headers=bob.headers)).json()["voice"])[
        "cloneStatus"
    ] != "failed":
        assert time.monotonic() < deadline, voice
    assert voice["lastError"]["code"] == "no_speech"
    assert one(sql, "select status from voice_samples")["status"] == "failed"
    assert one(sql, "select count(*) as n from voicegate.local_voices")["n"] == 0


async def test_a_custom_voice_id_needs_no_preview(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn
) -> None:
    client = await worker_client()
    carol = make_user()
    first = (await client.post("/v1/reflections", json={"name": "one"}, headers=carol.headers)).json()["id"]
    second = (await client.post("/v1/reflections", json={"name": "two"}, headers=carol.headers)).json()["id"]
    assert (await clone_upload(client, carol, first, speech_wav())).status_code == 202
    await follow_until(client, carol, sql, first, lambda s: s["voice"]["runtimeStatus"] == "synced")
    provider_voice = one(sql, "select provider_voice_id from voice_clone_attempts")["provider_voice_id"]

    attached = await client.patch(
        f"/v1/reflections/{second}/voice",
        json={"provider": "local", "voice_id": provider_voice},
        headers=carol.headers,
    )
    assert attached.status_code == 202, attached.text
    assert (attached.json()["source"], attached.json()["previewRequired"]) == ("custom_voice_id", False)
    await follow_until(client, carol, sql, second, lambda s: s["launchReady"])
    launched = await client.post(f"/v1/reflections/{second}/sessions", headers=carol.headers)
    assert launched.status_code == 201

    # Another user cannot attach Carol's voice, though it exists at the (shared) provider account.
    mallory = make_user()
    theirs = (await client.post("/v1/reflections", json={"name": "m"}, headers=mallory.headers)).json()["id"]
    taken = await client.patch(
        f"/v1/reflections/{theirs}/voice",
        json={"provider": "local", "voice_id": provider_voice},
        headers=mallory.headers,
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "provider_voice_taken")
    unknown = await client.patch(
        f"/v1/reflections/{theirs}/voice", json={"provider": "local", "voice_id": "local-nope"}, headers=mallory.headers
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "provider_voice_not_found")
    assert one(sql, "select count(*) as n from voice_clone_attempts where owner_id = %s", (mallory.id,))["n"] == 0


async def test_finalize_with_prefer_wait_returns_the_finished_voice(
    worker_client: Callable[..., Any], make_user: Callable[[], User]
) -> None:
    client = await worker_client()
    dana = make_user()
    ticket = (
        await client.post("/api/clone/upload-url", json={"name": "Dana", "consent": True}, headers=dana.headers)
    ).json()
    put = await client.put(
        local_path(ticket["upload_url"]),
        content=speech_wav(),
        headers={"content-type": "audio/wav"},
    )
    assert put.status_code == 200, put.text
    finalized = await client.post(
        "/api/clone/finalize",
        json={"voice_id": ticket["voice_id"], "language": "en"},
        headers={**dana.headers, "Prefer": "wait=30"},
    )
    assert finalized.status_code == 200, finalized.text
    assert finalized.headers["preference-applied"] == "wait=30"
    voice = finalized.json()
    assert (voice["id"], voice["status"], voice["tts_provider"]) == (ticket["voice_id"], "ready", "local")
    assert voice["provider_voice_id"].startswith("local-")

    # Without the preference (or with wait=0) the answer is the usual 202.
    second = (
        await client.post("/api/clone/upload-url", json={"name": "D2", "consent": True}, headers=dana.headers)
    ).json()
    await client.put(
        local_path(second["upload_url"]),
        content=speech_wav(seed=2),
        headers={"content-type": "audio/wav"},
    )
    quick = await client.post(
        "/api/clone/finalize", json={"voice_id": second["voice_id"]}, headers={**dana.headers, "Prefer": "wait=0"}
    )
    assert quick.status_code == 202
