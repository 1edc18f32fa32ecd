"""A file voicegate stored and then finds changed, directly on disk behind Storage, is never used or served:
a render's result answers `stored_object_altered`, a preview loses its URL, and a cleaned sample fails its
clone attempt without the provider ever hearing it. Each time an audit event records what voicegate
had written and what it found."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devkit.audio_corpus import speech_wav
from devkit.db import Conn, one
from fakes import ElevenLabsFake, serve
from standins.storage import route_responses
from standins.storage.access import StoredObject
from tests.e2e.conftest import elevenlabs_env
from tests.e2e.test_provenance import Client, cloned_job, fetch, flip_a_sample, poll
from tests.e2e.test_samples_and_synthesis import job_settled, sample_settled, upload
from tests.integration.api.conftest import User

pytestmark = pytest.mark.timeout(120)
#: The audit action operators look for.
AUDIT_ACTION = "storage.object_altered"
#: The app asks Storage what a stored file is at each URL it signs, so a change on disk shows at the next poll.
ASK_EACH_TIME = {"VOICEGATE_STORAGE_VERSION_SECONDS": "0"}


def alter_on_disk(storage_root: Path, bucket: str, path: str) -> tuple[str, str]:
    """Change one audio byte of the stored file in place, as someone with the disk could; the SHA-256
    of the bytes before and after."""
    file = storage_root / bucket / path
    before = file.read_bytes()
    after = flip_a_sample(before)
    file.write_bytes(after)
    return hashlib.sha256(before).hexdigest(), hashlib.sha256(after).hexdigest()


def altered_events(sql: Conn) -> list[dict[str, Any]]:
    rows = sql.execute(
        "select actor, subject_type, subject_id, detail from voicegate.audit_events where action = %s order by id",
        (AUDIT_ACTION,),
    )
    return [dict(zip(("actor", "subject_type", "subject_id", "detail"), row, strict=True)) for row in rows]


def assert_audited(
    sql: Conn, subject: tuple[str, str], bucket: str, path: str, sha256s: tuple[str, str]
) -> dict[str, Any]:
    (event,) = altered_events(sql)
    assert (event["subject_type"], event["subject_id"]) == subject
    detail = event["detail"]
    assert (detail["bucket_id"], detail["name"]) == (bucket, path)
    assert (detail["recorded"]["sha256"], detail["found"]["sha256"]) == sha256s
    assert detail["recorded"]["size_bytes"] == detail["found"]["size_bytes"]
    return event


async def test_an_altered_render_is_refused_and_audited(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    client: Client = await worker_client(**ASK_EACH_TIME)
    user = make_user()
    job_id, status = await cloned_job(client, user)
    assert status["status"] == "succeeded", status["error"]
    result = await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)
    assert result.status_code == 200, result.text
    job = one(sql, "select output_bucket_id, output_object_path from synthesis_jobs where id = %s", (job_id,))
    bucket, path = job["output_bucket_id"], job["output_object_path"]
    assert altered_events(sql) == []

    sha256s = alter_on_disk(tmp_path / "storage", bucket, path)
    refused = await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)

    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "stored_object_altered"
    assert "audioUrl" not in body
    event = assert_audited(sql, ("synthesis_job", job_id), bucket, path, sha256s)
    assert event["actor"] == f"user:{user.id}"
    # Still refused on the next ask: the altered file is never voicegate's output.
    again = await client.get(f"/api/v1/clone/{job_id}/result", headers=user.headers)
    assert (again.status_code, again.json()["code"]) == (409, "stored_object_altered")


async def cloned_reflection(client: Client, user: User) -> str:
    """A reflection of `user`'s whose voice is being cloned from speech: the path of its voice state."""
    reflection = (await client.post("/v1/reflections", json={"name": "Ada"}, headers=user.headers)).json()["id"]
    cloned = await client.post(
        f"/v1/reflections/{reflection}/voice/clone",
        data={"consent": "true", "language": "en"},
        files={"file": ("me.wav", speech_wav(), "audio/wav")},
        headers=user.headers,
    )
    assert cloned.status_code == 202, cloned.text
    return f"/v1/reflections/{reflection}/voice"


async def test_an_altered_preview_is_not_served(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    client: Client = await worker_client(**ASK_EACH_TIME)
    user = make_user()
    path = await cloned_reflection(client, user)
    state = await poll(client, user, path, lambda s: s["voice"]["previewStatus"] == "ready")
    assert (state["provenance"], state.get("previewError")) == ("c2pa", None)
    await fetch(client, state["previewUrl"])
    preview = f"{user.id}/{state['voice']['attemptId']}/preview.wav"

    sha256s = alter_on_disk(tmp_path / "storage", "voice-previews", preview)
    response = await client.get(path, headers=user.headers)

    assert response.status_code == 200, response.text
    state = response.json()
    assert (state["previewUrl"], state["provenance"], state.get("previewError")) == (
        None,
        None,
        "stored_object_altered",
    )
    assert state["voice"]["previewStatus"] == "ready"
    assert_audited(sql, ("voice_clone_attempt", state["voice"]["attemptId"]), "voice-previews", preview, sha256s)


def count_object_reads(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """The objects the Storage stand-in reads to answer from now on (every download, signed or not), and those it
    answers a HEAD about, by name."""
    read: list[str] = []
    headed: list[str] = []
    streamed, head = route_responses.stream, route_responses.head

    async def counted(stored: StoredObject, download: str | None) -> Any:
        read.append(stored.row["name"])
        return await streamed(stored, download)

    def counted_head(stored: StoredObject) -> Any:
        headed.append(stored.row["name"])
        return head(stored)

    monkeypatch.setattr(route_responses, "stream", counted)
    monkeypatch.setattr(route_responses, "head", counted_head)
    return read, headed


async def test_polls_of_a_ready_preview_read_none_of_its_bytes_at_storage(
    worker_client: Callable[..., Any],
    make_user: Callable[[], User],
    sql: Conn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The polled voice state links its preview without Storage reading the file: 0 reads in 20 polls (a HEAD each),
    which hand out one URL; a change on disk is found by the next poll, with one read, and later polls read nothing
    again."""
    client: Client = await worker_client(**ASK_EACH_TIME)
    user = make_user()
    path = await cloned_reflection(client, user)
    await poll(client, user, path, lambda s: s["voice"]["previewStatus"] == "ready")
    preview = f"{user.id}/{(await client.get(path, headers=user.headers)).json()['voice']['attemptId']}/preview.wav"
    read, headed = count_object_reads(monkeypatch)

    states = [(await client.get(path, headers=user.headers)).json() for _ in range(20)]
    assert (read, headed) == ([], [preview] * 20)
    assert len({state["previewUrl"] for state in states}) == 1
    assert await fetch(client, states[0]["previewUrl"])
    assert read == [preview]  # the count sees a read: the client's download

    alter_on_disk(tmp_path / "storage", "voice-previews", preview)
    states = [(await client.get(path, headers=user.headers)).json() for _ in range(5)]
    assert {(state["previewUrl"], state.get("previewError")) for state in states} == {(None, "stored_object_altered")}
    assert read == [preview, preview]
    assert len(altered_events(sql)) == 1


async def test_an_altered_cleaned_sample_fails_the_clone_and_never_reaches_the_provider(
    worker_client: Callable[..., Any], make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    fake = ElevenLabsFake()
    with serve(fake) as url:
        client: Client = await worker_client(**elevenlabs_env(fake, url))
        user = make_user()
        accepted = await upload(client, user, speech_wav())
        assert accepted.status_code == 202, accepted.text
        sample_id = accepted.json()["sampleId"]
        assert (await sample_settled(client, user, sample_id))["status"] == "ready"
        sample = one(
            sql,
            "select bucket_id, processed_object_path, processed_provider from voice_samples where id = %s",
            (sample_id,),
        )
        assert sample["processed_provider"] == "elevenlabs"
        sha256s = alter_on_disk(tmp_path / "storage", sample["bucket_id"], sample["processed_object_path"])

        job = await client.post("/api/v1/clone", json={"sampleId": sample_id, "text": "Hello."}, headers=user.headers)
        assert job.status_code == 202, job.text
        finished = await job_settled(client, user, job.json()["jobId"])

        assert finished["status"] == "failed"
        attempt = one(sql, "select status, last_error_code, last_error_message from voice_clone_attempts")
        assert (attempt["status"], attempt["last_error_code"]) == ("failed", "stored_object_altered")
        assert attempt["last_error_message"] == (
            "The stored sample has changed since voicegate checked it; upload a new one."
        )
        assert fake.requests_to("POST", "/v1/voices/add") == []
        checked = await client.get(f"/api/v1/voice-samples/{sample_id}/status", headers=user.headers)
        assert checked.json()["status"] == "failed"
        assert_audited(sql, ("voice_sample", sample_id), sample["bucket_id"], sample["processed_object_path"], sha256s)
