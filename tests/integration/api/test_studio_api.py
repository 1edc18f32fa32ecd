"""The studio page's routes: rename a voice or a sample, listen to a sample, a voice's clips a page at a time,
a clip's audio as WAV or MP3, cancel a job, delete a clip with its stored render. Bad input is a 400 that
changes nothing; another user's voice, sample or job is a 404; a Storage fault while deleting leaves the
row, its render and the render's record as they were."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import soundfile
from litestar.testing import AsyncTestClient

from backend.errors import StorageUnavailable
from backend.storage import integrity, paths
from backend.synthesis.step import BUCKET
from devkit.audio_corpus import speech_wav
from devkit.db import Conn, one
from tests.integration.api.conftest import User
from tests.integration.api.test_sample_list import upload
from tests.support import seed_attempt, seed_voice

Client = AsyncTestClient  # type: ignore[type-arg]

BAD_NAMES = [" ", "", "a\tb", "line\nbreak", "nul\x00", "bell\x07", "x" * 201]


def seed_job(sql: Conn, owner: uuid.UUID, voice: uuid.UUID, text: str = "Hello.", status: str = "queued") -> str:
    lease = ("w/1", "now() + interval '1 minute'") if status == "processing" else (None, "null")
    row = one(
        sql,
        "insert into synthesis_jobs (owner_id, voice_id, input_text, status, lease_owner, lease_expires_at)"
        f" values (%s, %s, %s, %s, %s, {lease[1]}) returning id",
        (owner, voice, text, status, lease[0]),
    )
    return str(row["id"])


async def seed_render(client: Client, sql: Conn, owner: uuid.UUID, voice: uuid.UUID) -> tuple[str, bytes]:
    """A succeeded job with its WAV stored and recorded, as the worker leaves one."""
    job = seed_job(sql, owner, voice, "A clip to keep.")
    path, wav = paths.render(owner, uuid.UUID(job)), speech_wav(seconds=2.0)
    async with client.app.state.db.service_transaction() as conn:
        await integrity.write(conn, client.app.state.storage, BUCKET, path, wav, content_type="audio/wav")
    sql.execute(
        "update synthesis_jobs set status = 'succeeded', output_bucket_id = %s, output_object_path = %s,"
        " duration_ms = 2000, finished_at = now() where id = %s",
        (BUCKET, path, job),
    )
    return job, wav


def stored(client: Client, path: str) -> bool:
    return (client.app.state.settings.data_dir / "storage" / BUCKET / path).exists()


def recorded(sql: Conn, path: str) -> bool:
    return (
        sql.execute(
            "select 1 from voicegate.service_written_objects where bucket_id = %s and name = %s", (BUCKET, path)
        ).fetchone()
        is not None
    )


def problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.text


async def test_a_voice_is_renamed_by_its_owner_only(client: Client, make_user: Callable[[], User], sql: Conn) -> None:
    user, other = make_user(), make_user()
    voice = seed_voice(sql, user.id, "Voice from sample of 2026-11-25")

    renamed = await client.patch(f"/api/voices/{voice}", json={"name": "  Grandma reading  "}, headers=user.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Grandma reading"
    assert (await client.get(f"/api/voices/{voice}", headers=user.headers)).json()["name"] == "Grandma reading"

    for bad in BAD_NAMES:
        response = await client.patch(f"/api/voices/{voice}", json={"name": bad}, headers=user.headers)
        problem(response, 400, "validation_failed")
    problem(
        await client.patch(f"/api/voices/{voice}", json={"name": "x", "id": "y"}, headers=user.headers),
        400,
        "validation_failed",
    )
    problem(
        await client.patch(f"/api/voices/{voice}", json={"name": "Stolen"}, headers=other.headers), 404, "not_found"
    )
    assert (await client.patch(f"/api/voices/{voice}", json={"name": "x"})).status_code == 401
    assert one(sql, "select name from voices where id = %s", (voice,))["name"] == "Grandma reading"

    sql.execute("update voices set deleted_at = now() where id = %s", (voice,))
    problem(await client.patch(f"/api/voices/{voice}", json={"name": "Back"}, headers=user.headers), 404, "not_found")


async def test_a_sample_is_named_at_upload_renamed_and_listened_to(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user, other = make_user(), make_user()
    wav = speech_wav()
    response = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true", "name": "Kitchen, morning"},
        files={"file": ("me.wav", wav, "audio/wav")},
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    sample = response.json()["sampleId"]
    listed = (await client.get("/api/v1/voice-samples", headers=user.headers)).json()["samples"]
    assert [(s["sampleId"], s["name"]) for s in listed] == [(sample, "Kitchen, morning")]
    unnamed = await upload(client, user)
    assert (await client.get(f"/api/v1/voice-samples/{unnamed}/status", headers=user.headers)).json()["name"] is None

    renamed = await client.patch(f"/api/v1/voice-samples/{sample}", json={"name": "Studio take"}, headers=user.headers)
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["sampleId"], renamed.json()["name"]) == (sample, "Studio take")
    for bad in BAD_NAMES:
        problem(
            await client.patch(f"/api/v1/voice-samples/{sample}", json={"name": bad}, headers=user.headers),
            400,
            "validation_failed",
        )
    problem(
        await client.patch(f"/api/v1/voice-samples/{sample}", json={"name": "Mine"}, headers=other.headers),
        404,
        "not_found",
    )
    assert one(sql, "select name from voice_samples where id = %s", (sample,))["name"] == "Studio take"
    bad_upload = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true", "name": "tab\there"},
        files={"file": ("me.wav", wav, "audio/wav")},
        headers=user.headers,
    )
    problem(bad_upload, 400, "validation_failed")
    assert one(sql, "select count(*) as n from voice_samples where owner_id = %s", (user.id,))["n"] == 2

    # The voice cloned from it takes its name.
    job = await client.post("/api/v1/clone", json={"sampleId": sample, "text": "Hello."}, headers=user.headers)
    assert job.status_code == 202, job.text
    voice = (await client.get(f"/api/voices/{job.json()['voiceId']}", headers=user.headers)).json()
    assert voice["name"] == "Studio take"

    listen = await client.get(f"/api/v1/voice-samples/{sample}/audio-url", headers=user.headers)
    assert listen.status_code == 200, listen.text
    assert listen.json()["copy"] == "original"
    assert 0 < listen.json()["expiresIn"] <= 300
    audio = await client.get(listen.json()["audioUrl"])
    assert audio.status_code == 200
    assert audio.content == wav
    problem(await client.get(f"/api/v1/voice-samples/{sample}/audio-url", headers=other.headers), 404, "not_found")


async def test_a_voices_clips_come_newest_first_a_page_at_a_time(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user, other = make_user(), make_user()
    voice, elsewhere = seed_voice(sql, user.id), seed_voice(sql, user.id, "Other")
    jobs = [seed_job(sql, user.id, voice, f"Clip number {n}.") for n in range(5)]
    seed_job(sql, user.id, elsewhere, "Not this voice.")
    # Two share a created_at: the id orders them, and paging neither repeats nor skips one.
    for n, job in enumerate(jobs):
        sql.execute(
            "update synthesis_jobs set created_at = now() - make_interval(mins => %s) where id = %s",
            (min(n, 3), job),
        )
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await client.get(f"/api/voices/{voice}/clips", params=params, headers=user.headers)
        assert page.status_code == 200, page.text
        assert len(page.json()["clips"]) <= 2
        seen += page.json()["clips"]
        pages += 1
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(c["jobId"] for c in seen) == sorted(jobs)
    assert len({c["jobId"] for c in seen}) == 5
    created = [(c["createdAt"], c["jobId"]) for c in seen]
    assert created == sorted(created, reverse=True)
    assert seen[0] == {
        "jobId": jobs[0],
        "status": "queued",
        "text": "Clip number 0.",
        "durationMs": None,
        "error": None,
        "createdAt": seen[0]["createdAt"],
        "finishedAt": None,
    }

    problem(await client.get(f"/api/voices/{voice}/clips", headers=other.headers), 404, "not_found")
    problem(await client.get(f"/api/voices/{uuid.uuid4()}/clips", headers=user.headers), 404, "not_found")
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "not-a-cursor"}):
        response = await client.get(f"/api/voices/{voice}/clips", params=params, headers=user.headers)
        assert response.status_code == 400, (params, response.text)
    assert (await client.get(f"/api/voices/{voice}/clips")).status_code == 401


async def test_a_clip_downloads_as_wav_and_as_mp3(client: Client, make_user: Callable[[], User], sql: Conn) -> None:
    user, other = make_user(), make_user()
    voice = seed_voice(sql, user.id)
    job, wav = await seed_render(client, sql, user.id, voice)

    as_wav = await client.get(f"/api/v1/clone/{job}/audio", headers=user.headers)
    assert as_wav.status_code == 200, as_wav.text
    assert as_wav.headers["content-type"] == "audio/wav"
    assert as_wav.headers["content-disposition"] == f'attachment; filename="clip-{job}.wav"'
    assert as_wav.content == wav
    as_mp3 = await client.get(f"/api/v1/clone/{job}/audio", params={"format": "mp3"}, headers=user.headers)
    assert as_mp3.status_code == 200, as_mp3.text
    assert as_mp3.headers["content-type"] == "audio/mpeg"
    assert as_mp3.headers["content-disposition"] == f'attachment; filename="clip-{job}.mp3"'
    assert as_mp3.content[:2] == b"\xff\xf3"  # an MPEG-2 Layer III frame, as the speech routes send
    info = soundfile.info(io.BytesIO(as_mp3.content))
    assert (info.format, info.samplerate, info.channels) == ("MP3", 24000, 1)
    assert abs(info.duration - soundfile.info(io.BytesIO(wav)).duration) < 0.2

    problem(await client.get(f"/api/v1/clone/{job}/audio", headers=other.headers), 404, "not_found")
    bad = await client.get(f"/api/v1/clone/{job}/audio", params={"format": "ogg"}, headers=user.headers)
    assert bad.status_code == 400, bad.text
    running = seed_job(sql, user.id, voice)
    problem(await client.get(f"/api/v1/clone/{running}/audio", headers=user.headers), 409, "synthesis_not_finished")


@pytest.mark.parametrize("status", ["queued", "processing"])
async def test_a_job_that_has_not_ended_is_canceled(
    client: Client, make_user: Callable[[], User], sql: Conn, status: str
) -> None:
    user, other = make_user(), make_user()
    voice = seed_voice(sql, user.id)
    job = seed_job(sql, user.id, voice, status=status)

    problem(await client.post(f"/api/v1/clone/{job}/cancel", headers=other.headers), 404, "not_found")
    assert one(sql, "select status from synthesis_jobs where id = %s", (job,))["status"] == status
    canceled = await client.post(f"/api/v1/clone/{job}/cancel", headers=user.headers)
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["jobId"], canceled.json()["status"]) == (job, "canceled")
    assert canceled.json()["finishedAt"] is not None
    row = one(sql, "select status, lease_owner, lease_expires_at from synthesis_jobs where id = %s", (job,))
    assert row == {"status": "canceled", "lease_owner": None, "lease_expires_at": None}
    # The run that held the lease is fenced out of its writes: its progress and its finish touch nothing.
    progressed = sql.execute(
        "update synthesis_jobs set progress_done = 1 where id = %s and status = 'processing' and lease_owner = 'w/1'"
        " returning id",
        (job,),
    ).fetchone()
    assert progressed is None

    problem(await client.post(f"/api/v1/clone/{job}/cancel", headers=user.headers), 409, "synthesis_ended")
    problem(await client.get(f"/api/v1/clone/{job}/result", headers=user.headers), 409, "synthesis_not_finished")


async def test_a_clip_is_deleted_with_its_render_and_nothing_else(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user, other = make_user(), make_user()
    voice = seed_voice(sql, user.id)
    job, _ = await seed_render(client, sql, user.id, voice)
    kept, _ = await seed_render(client, sql, user.id, voice)
    path = paths.render(user.id, uuid.UUID(job))
    assert stored(client, path)
    assert recorded(sql, path)

    problem(await client.delete(f"/api/v1/clone/{job}", headers=other.headers), 404, "not_found")
    running = seed_job(sql, user.id, voice)
    problem(await client.delete(f"/api/v1/clone/{running}", headers=user.headers), 409, "synthesis_not_finished")
    assert one(sql, "select count(*) as n from synthesis_jobs where owner_id = %s", (user.id,))["n"] == 3

    assert (await client.delete(f"/api/v1/clone/{job}", headers=user.headers)).status_code == 204
    assert sql.execute("select 1 from synthesis_jobs where id = %s", (job,)).fetchone() is None
    assert not stored(client, path)
    assert not recorded(sql, path)
    audit = one(
        sql,
        "select actor, detail from voicegate.audit_events where action = 'synthesis_job.delete' and subject_id = %s",
        (job,),
    )
    assert audit["actor"] == f"user:{user.id}"
    assert audit["detail"]["removed"] == [path]
    kept_path = paths.render(user.id, uuid.UUID(kept))
    assert stored(client, kept_path)
    assert recorded(sql, kept_path)
    problem(await client.delete(f"/api/v1/clone/{job}", headers=user.headers), 404, "not_found")


async def test_a_storage_fault_while_deleting_leaves_the_clip_whole(
    client: Client, make_user: Callable[[], User], sql: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    job, wav = await seed_render(client, sql, user.id, seed_voice(sql, user.id))
    path = paths.render(user.id, uuid.UUID(job))

    async def storage_down(bucket: str, paths: list[str]) -> list[str]:
        raise StorageUnavailable("Storage is unreachable.")

    monkeypatch.setattr(client.app.state.storage, "remove", storage_down)
    response = await client.delete(f"/api/v1/clone/{job}", headers=user.headers)
    problem(response, 503, "storage_unavailable")
    assert "retry-after" in response.headers
    assert one(sql, "select status from synthesis_jobs where id = %s", (job,))["status"] == "succeeded"
    assert stored(client, path)
    assert recorded(sql, path)
    assert sql.execute("select 1 from voicegate.audit_events where subject_id = %s", (job,)).fetchone() is None
    monkeypatch.undo()
    assert (await client.get(f"/api/v1/clone/{job}/audio", headers=user.headers)).content == wav


async def test_a_voice_is_heard_by_its_preview_else_its_newest_clip(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user, other = make_user(), make_user()
    voice = seed_voice(sql, user.id)
    none_yet = await client.get(f"/api/voices/{voice}/preview", headers=user.headers)
    assert none_yet.status_code == 200, none_yet.text
    assert none_yet.json() == {"audioUrl": None, "expiresIn": 0, "source": None}

    _, wav = await seed_render(client, sql, user.id, voice)
    clip = (await client.get(f"/api/voices/{voice}/preview", headers=user.headers)).json()
    assert clip["source"] == "clip"
    assert (await client.get(clip["audioUrl"])).content == wav

    attempt = seed_attempt(sql, user.id, voice, None)
    path, preview = f"{user.id}/{attempt['id']}/preview.wav", speech_wav(seconds=1.0, seed=3)
    async with client.app.state.db.service_transaction() as conn:
        await integrity.write(conn, client.app.state.storage, "voice-previews", path, preview, content_type="audio/wav")
    sql.execute(
        "update voice_clone_attempts set preview_status = 'ready',"
        " provider_metadata = jsonb_build_object('preview',"
        "   jsonb_build_object('bucket', 'voice-previews', 'path', %s::text))"
        " where id = %s",
        (path, attempt["id"]),
    )
    heard = (await client.get(f"/api/voices/{voice}/preview", headers=user.headers)).json()
    assert heard["source"] == "preview"
    assert (await client.get(heard["audioUrl"])).content == preview

    problem(await client.get(f"/api/voices/{voice}/preview", headers=other.headers), 404, "not_found")
    sql.execute("update voices set deleted_at = now() where id = %s", (voice,))
    problem(await client.get(f"/api/voices/{voice}/preview", headers=user.headers), 404, "not_found")
