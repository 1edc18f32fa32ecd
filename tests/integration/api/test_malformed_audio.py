"""Malformed audio (`devkit.malformed_audio`: NaN and infinite float samples, formats no recording has, headers cut
short or claiming gigabytes, files with no audio) through every route that reads audio. A route that decodes the
file answers each with a 4xx problem+json whose detail is a sentence; a route that only sniffs it and leaves the
check to a queue (the sample queue, the clone queue) accepts it, and the queue's step, driven here, fails the
sample with that same sentence. Nothing is left half-done: a consent refused a recording is as it was, and every
object in Storage is one a sample row claims.

Each test sends every file through its route on one app."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from psycopg.rows import dict_row

from backend.clone.step import process_attempt
from backend.context import WorkerContext
from backend.samples.step import process_sample
from devkit.db import Conn
from devkit.malformed_audio import malformed_audio
from tests.integration.api.conftest import User
from tests.integration.api.test_clone_api import put_sample, upload_url
from tests.integration.api.test_consent_states import new_consent, record, state

Client = AsyncTestClient  # type: ignore[type-arg]
#: (status, code, detail) of a file refused as it is decoded; a route that checks on a queue fails its sample
#: with the detail.
Refusal = tuple[int, str, str]

_CORRUPT = "unsupported or corrupt audio: "
_NOT_FINITE = "; audio samples must be finite numbers"
_RATES = "(sample rates 8000-96000 Hz are accepted)"


def _corrupt(words: str) -> Refusal:
    return 415, "unsupported_audio", _CORRUPT + words


#: How decoding refuses each file, on every route that reads audio.
DECODED: dict[str, Refusal] = {
    "f32_nan.wav": _corrupt("the sample at 0.500 s is NaN (not a number)" + _NOT_FINITE),
    "f32_pos_inf.wav": _corrupt("the sample at 0.500 s is +infinity" + _NOT_FINITE),
    "f32_neg_inf.wav": _corrupt("the sample at 0.500 s is -infinity" + _NOT_FINITE),
    "f64_nan.wav": _corrupt("the sample at 0.500 s is NaN (not a number)" + _NOT_FINITE),
    "f64_pos_inf.wav": _corrupt("the sample at 0.500 s is +infinity" + _NOT_FINITE),
    "f64_neg_inf.wav": _corrupt("the sample at 0.500 s is -infinity" + _NOT_FINITE),
    "f64_past_float32.wav": _corrupt("the sample at 0.500 s is +infinity" + _NOT_FINITE),
    "f32_nan_extensible.wav": _corrupt("the sample at 0.500 s is NaN (not a number)" + _NOT_FINITE),
    "f32_nan_read_by_ffmpeg.wav": _corrupt("the sample at 0.500 s is NaN (not a number)" + _NOT_FINITE),
    "f32_nan.mka": _corrupt("codec pcm_f32le is not accepted in audio/webm"),
    "zero_channels.wav": _corrupt("the file says it has 0 channels"),
    "rate_0.wav": _corrupt(f"0 Hz, 1 channel(s) {_RATES}"),
    "rate_1.wav": _corrupt(f"1 Hz, 1 channel(s) {_RATES}"),
    "rate_2147483647.wav": _corrupt(f"2147483647 Hz, 1 channel(s) {_RATES}"),
    "data_past_end.wav": _corrupt("the file is truncated (0.5 s of the 1.0 s its header claims)"),
    "cut_in_fmt.wav": _corrupt("the file ends inside its header (its `fmt` chunk claims 16 bytes, and 7 follow)"),
    "data_size_near_4gib.wav": (
        422,
        "audio_too_long_for_size",
        "audio too long for its size: the header claims 134217.7 s but the file holds 0.5 s",
    ),
    "list_size_near_4gib.wav": _corrupt(
        "the file ends inside its header (its `LIST` chunk claims 4294967280 bytes, and 16012 follow)"
    ),
    "fmt_claims_gigabytes.wav": _corrupt(
        "the file ends inside its header (its `fmt` chunk claims 2147483648 bytes, and 16024 follow)"
    ),
    "empty": _corrupt("not a WAV, MP3, FLAC, OGG, WebM or M4A audio file"),
    "header_only.wav": _corrupt("no audio could be decoded"),
    "riff_only.wav": _corrupt("the file holds no audio (its header has no data chunk)"),
}
#: What a route that sniffs the upload before anything is stored answers a file that starts as no audio does.
NOT_AUDIO: Refusal = (
    415,
    "unsupported_audio_format",
    "unsupported audio format: the file is not WAV, MP3, FLAC, OGG/Opus, WebM/Opus or M4A/AAC.",
)
#: The files refused by their first bytes, before anything is stored.
SNIFFED_AS_NOT_AUDIO = frozenset({"empty"})


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return malformed_audio()


#: What a route that only sniffs the upload comes to with each file: refused as not audio by its first bytes, or
#: accepted and, on the queue, failed with the code and the sentence decoding refused it with.
QUEUED: dict[str, Refusal | tuple[str, str]] = {
    name: NOT_AUDIO if name in SNIFFED_AS_NOT_AUDIO else (code, detail) for name, (_, code, detail) in DECODED.items()
}


def worker(client: Client) -> WorkerContext:
    """The worker context of the app's own process: its database and Storage, as a queue consumer's."""
    ctx: WorkerContext = client.app.state.worker_context
    return ctx


def refusal(response: httpx.Response) -> Refusal:
    """A 4xx answer as (status, code, detail), checked to be problem+json."""
    assert response.headers["content-type"] == "application/problem+json", response.text
    body = response.json()
    assert body["status"] == response.status_code, body
    return response.status_code, body["code"], body["detail"]


def rows(sql: Conn, query: str, *params: object) -> list[dict[str, Any]]:
    with sql.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def stored(sql: Conn, data_dir: Path, user: User) -> set[str]:
    """The names of `user`'s objects in Storage, checked to be the same in its rows and in the stand-in's files."""
    listed = {row["name"] for row in rows(sql, "select name from storage.objects where name like %s", f"{user.id}/%")}
    folder = data_dir / "storage" / "voice-samples" / str(user.id)
    held = {str(path.relative_to(folder.parent)) for path in folder.rglob("*") if path.is_file()}
    assert listed == held
    return listed


def failed_originals(sql: Conn, user: User) -> set[str]:
    """The originals of `user`'s samples, each checked to have failed before a cleaned copy or a report was made."""
    samples = rows(
        sql,
        "select object_path, status, processed_object_path, quality_report from voice_samples where owner_id = %s",
        user.id,
    )
    assert {(s["status"], s["processed_object_path"], s["quality_report"]) for s in samples} <= {("failed", None, None)}
    return {s["object_path"] for s in samples}


def consent_rows(sql: Conn, consent: dict[str, Any]) -> list[dict[str, Any]]:
    """The consent's row and the audit events about it."""
    consent_id = consent["consentId"]
    row = rows(sql, "select * from voice_consents where id = %s", consent_id)
    audited = rows(sql, "select * from voicegate.audit_events where subject_id = %s::text", consent_id)
    return row + audited


async def test_the_provenance_check_refuses_each_file_in_words(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path, files: dict[str, bytes]
) -> None:
    user = make_user()
    answers = {}
    for name, data in files.items():
        sent = await client.post(
            "/api/v1/provenance/check", files={"file": (name, data, "audio/wav")}, headers=user.headers
        )
        answers[name] = refusal(sent)

    assert answers == DECODED
    assert stored(sql, tmp_path, user) == failed_originals(sql, user) == set()


async def test_a_consent_refuses_each_recording_in_words_and_stays_as_it_was(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path, files: dict[str, bytes]
) -> None:
    user = make_user()
    consent = await new_consent(client, user)
    before = consent_rows(sql, consent)

    answers = {name: refusal(await record(client, user, consent, data)) for name, data in files.items()}

    assert answers == {
        name: NOT_AUDIO if name in SNIFFED_AS_NOT_AUDIO else refused for name, refused in DECODED.items()
    }
    assert consent_rows(sql, consent) == before
    assert (await state(client, user, consent))["status"] == "awaiting_recording"
    assert stored(sql, tmp_path, user) == failed_originals(sql, user) == set()


async def test_an_uploaded_sample_of_each_file_fails_its_check_with_the_sentence(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path, files: dict[str, bytes]
) -> None:
    user = make_user()
    ends: dict[str, Refusal | str] = {}
    for name, data in files.items():
        sent = await client.post(
            "/api/v1/voice-samples",
            data={"consent": "true"},
            files={"file": (name, data, "audio/wav")},
            headers=user.headers,
        )
        if sent.status_code != 202:
            ends[name] = refusal(sent)
            continue
        sample_id = uuid.UUID(sent.json()["sampleId"])
        assert (await process_sample(worker(client), sample_id)).status == "failed", name
        status = (await client.get(f"/api/v1/voice-samples/{sample_id}/status", headers=user.headers)).json()
        assert (status["status"], status["quality"]) == ("failed", None), status
        ends[name] = status["failureReason"]

    # A sample keeps the sentence alone: its code is the attempt's (below).
    assert ends == {name: end if end == NOT_AUDIO else end[1] for name, end in QUEUED.items()}
    originals = failed_originals(sql, user)
    assert stored(sql, tmp_path, user) == originals
    assert len(originals) == len(files) - len(SNIFFED_AS_NOT_AUDIO)


async def clone_attempt_ends(
    client: Client, user: User, attempt_id: uuid.UUID, sample_id: uuid.UUID
) -> tuple[str, str]:
    """Run the clone queue's step on the attempt: the code it failed with, and the sentence, checked to be the one
    its sample failed with."""
    assert (await process_attempt(worker(client), attempt_id, "worker-1")).status == "failed"
    attempt = (await client.get(f"/api/v1/attempts/{attempt_id}", headers=user.headers)).json()
    sample = (await client.get(f"/api/v1/voice-samples/{sample_id}/status", headers=user.headers)).json()
    assert (attempt["status"], sample["status"]) == ("failed", "failed"), (attempt, sample)
    assert attempt["lastError"]["message"] == sample["failureReason"], (attempt, sample)
    return attempt["lastError"]["code"], sample["failureReason"]


async def test_a_reflection_cloned_from_each_file_fails_its_sample_with_the_sentence(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path, files: dict[str, bytes]
) -> None:
    user = make_user()
    reflection = await client.post("/v1/reflections", json={"name": "r"}, headers=user.headers)
    assert reflection.status_code == 201, reflection.text
    ends: dict[str, Refusal | tuple[str, str]] = {}
    for name, data in files.items():
        sent = await client.post(
            f"/v1/reflections/{reflection.json()['id']}/voice/clone",
            data={"consent": "true"},
            files={"file": (name, data, "audio/wav")},
            headers=user.headers,
        )
        if sent.status_code != 202:
            ends[name] = refusal(sent)
            continue
        started = sent.json()
        ends[name] = await clone_attempt_ends(
            client, user, uuid.UUID(started["attemptId"]), uuid.UUID(started["sampleId"])
        )

    assert ends == QUEUED
    assert stored(sql, tmp_path, user) == failed_originals(sql, user)


async def test_a_voice_finalized_from_each_uploaded_file_fails_its_sample_with_the_sentence(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path, files: dict[str, bytes]
) -> None:
    user = make_user()
    ends: dict[str, Refusal | tuple[str, str]] = {}
    for name, data in files.items():
        ticket = await upload_url(client, user)
        await put_sample(client, ticket, data)
        sent = await client.post("/api/clone/finalize", json={"voice_id": ticket["voice_id"]}, headers=user.headers)
        if sent.status_code != 202:
            ends[name] = refusal(sent)
            continue
        started = sent.json()
        ends[name] = await clone_attempt_ends(
            client, user, uuid.UUID(started["attempt_id"]), uuid.UUID(started["sample_id"])
        )

    assert ends == QUEUED
    # A voice refused at finalize is a draft still, its upload in place for another try: the draft claims it.
    drafts = rows(sql, "select id from voices where owner_id = %s and status = 'draft'", user.id)
    assert len(drafts) == len(SNIFFED_AS_NOT_AUDIO)
    uploads = {f"{user.id}/{draft['id']}/original" for draft in drafts}
    assert stored(sql, tmp_path, user) == failed_originals(sql, user) | uploads
