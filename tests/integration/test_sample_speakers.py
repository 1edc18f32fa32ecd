"""Whose voice a sample is, window by window (issue 56), in the `voice_sample_process` step on a real database
and the real Storage stand-in, with real speech (the LibriSpeech clips kept with the tests, CC BY 4.0): under a
spoken consent of one man, his own utterance is ready with the prints of its partials kept; the same utterance
with 4 s of a woman put in its middle, which passes against the consent as a whole, fails
`speaker_mismatch` naming the seconds where she speaks, and so does 4 s of him followed by 14 s of her; under
the checkbox, a sample of one woman with 4 s of a man in it fails `mixed_speakers` naming his seconds. Each
refusal keeps the scores and is audited with the seconds."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
import soundfile

from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.samples.step import process_sample
from backend.voiceprint import THRESHOLD, SpeechPrints, Voiceprint, voiceprint
from devkit.audio_corpus import wav_bytes
from devkit.db import create_user, one, seed_consent
from tests.integration.conftest import open_lifecycle

CLIPS = Path(__file__).resolve().parents[1] / "clips" / "librispeech"
BUCKET = "voice-samples"
RATE = 16000
F32 = npt.NDArray[np.float32]


def clip(name: str) -> F32:
    """A LibriSpeech clip kept with the tests, as float samples at 16 kHz."""
    samples, rate = soundfile.read(CLIPS / name.split("-", maxsplit=1)[0] / f"{name}.flac", dtype="float32")
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


#: A man (2414): his utterance for the consent, another for his samples; a woman (533), and her other clip.
CONSENT = clip("2414-128291-0005")
HIS = clip("2414-128291-0007")
HERS = clip("533-1066-0008")[RATE : 5 * RATE]


def seconds_named(reason: str) -> list[tuple[float, float]]:
    """The stretches a failure reason names ("from 3.4 s to 7.3 s")."""
    return [(float(a), float(b)) for a, b in re.findall(r"from (\d+\.\d) s to (\d+\.\d) s", reason)]


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


def spoken_consent(db: psycopg.Connection[Any], owner: uuid.UUID, speaker: Voiceprint) -> uuid.UUID:
    """A verified spoken consent of `owner` whose recording's voiceprint is `speaker`'s."""
    consent: uuid.UUID = one(
        db,
        "insert into voice_consents (owner_id, subject_name, consent_text_version, kind, status, phrase, code,"
        " language, expires_at, voiceprint, statement_sample_path, verified_at, evidence_expires_at)"
        " values (%s, 'Ashwin', 'spoken-2026-11', 'spoken', 'verified', 'I, Ashwin, ...', '1234', 'en',"
        " now() + interval '10 minutes', %s, %s, now(), now() + interval '30 days') returning id",
        (owner, speaker.to_bytes(), f"{owner}/consents/{uuid.uuid4()}/recording"),
    )["id"]
    return consent


async def checked(
    ctx: WorkerContext, db: psycopg.Connection[Any], audio: F32, consent_id: uuid.UUID | None = None
) -> Any:
    """`audio` stored and checked as a pending sample under `consent_id` (a checkbox consent of its own when
    None); its row afterwards."""
    owner = (
        create_user(db)
        if consent_id is None
        else one(db, "select owner_id from voice_consents where id = %s", (consent_id,))["owner_id"]
    )
    sample_id = uuid.uuid4()
    path = f"{owner}/samples/{sample_id}/original"
    data = wav_bytes(audio, RATE)
    await ctx.storage.upload(BUCKET, path, data, "audio/wav")
    db.execute(
        "insert into voice_samples (id, owner_id, consent_id, object_path, sniffed_type, size_bytes, provider,"
        " status) values (%s, %s, %s, %s, 'audio/wav', %s, 'local', 'pending')",
        (sample_id, owner, consent_id or seed_consent(db, owner), path, len(data)),
    )
    await process_sample(ctx, sample_id)
    return one(db, "select * from voice_samples where id = %s", (sample_id,))


def audited(db: psycopg.Connection[Any], sample_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
    [(action, detail)] = db.execute(
        "select action, detail from voicegate.audit_events where subject_type = 'voice_sample' and subject_id = %s",
        (str(sample_id),),
    ).fetchall()
    return action, detail


async def test_another_voice_inside_a_consented_sample_is_refused_with_its_seconds(
    ctx: WorkerContext, db: psycopg.Connection[Any]
) -> None:
    his = voiceprint(CONSENT, RATE)
    assert his is not None
    consent = spoken_consent(db, create_user(db), his)

    own = await checked(ctx, db, HIS, consent)
    assert (own["status"], own["failure_reason"]) == ("ready", None)
    assert own["speaker_match"] >= THRESHOLD
    kept = SpeechPrints.from_bytes(bytes(own["speech_prints"]))
    assert kept.spans[0, 0] >= 0
    assert kept.spans[-1, 1] <= HIS.size / RATE + 0.1

    # Her 4 s put into the middle of his utterance: as a whole it still scores as him.
    at = round(3.4 * RATE)
    spliced = await checked(ctx, db, np.concatenate([HIS[:at], HERS, HIS[at:]]), consent)
    assert spliced["status"] == "failed"
    reason = spliced["failure_reason"]
    assert reason.startswith("speaker_mismatch: the speech from "), reason
    assert "is not the consent's speaker" in reason
    [(start, end)] = seconds_named(reason)
    assert start == pytest.approx(3.4, abs=1.0)
    assert end == pytest.approx(3.4 + HERS.size / RATE, abs=1.0)
    assert spliced["speaker_match"] >= THRESHOLD, "the whole sample passes; its windows do not"
    assert spliced["speech_prints"] is not None
    action, detail = audited(db, spliced["id"])
    assert action == "sample.speaker_mismatch"
    assert detail["consentId"] == str(consent)
    [stretch] = detail["stretches"]
    assert (round(stretch["startS"], 1), round(stretch["endS"], 1)) == (start, end)
    assert stretch["score"] < detail["windowThreshold"]

    # 4 s of him, then 14 s of her (two clips): refused from where she begins to the end.
    tail = np.concatenate([clip("533-1066-0008"), clip("533-1066-0009")])
    handed_over = await checked(ctx, db, np.concatenate([HIS[: 4 * RATE], tail]), consent)
    assert handed_over["status"] == "failed"
    [(start, end)] = seconds_named(handed_over["failure_reason"])
    assert start == pytest.approx(4.0, abs=1.0)
    assert end == pytest.approx(4.0 + tail.size / RATE, abs=1.0)


async def test_a_checkbox_sample_of_two_voices_is_refused_naming_the_other(
    ctx: WorkerContext, db: psycopg.Connection[Any]
) -> None:
    hers = clip("367-130732-0007")  # a woman, 9.8 s
    his = clip("2033-164914-0009")[RATE : 5 * RATE]  # 4 s of a man
    at = round(5.0 * RATE)

    mixed = await checked(ctx, db, np.concatenate([hers[:at], his, hers[at:]]))

    assert mixed["status"] == "failed"
    reason = mixed["failure_reason"]
    assert reason.startswith("mixed_speakers: the speech from "), reason
    assert "is not the voice of the rest of the sample" in reason
    [(start, end)] = seconds_named(reason)
    assert start == pytest.approx(5.0, abs=1.0)
    assert end == pytest.approx(9.0, abs=1.0)
    assert mixed["speaker_match"] is None
    action, detail = audited(db, mixed["id"])
    assert action == "sample.mixed_speakers"
    assert len(detail["stretches"]) == 1

    # One voice, from two of her utterances, is one voice.
    alone = await checked(ctx, db, np.concatenate([hers, clip("367-130732-0008")]))
    assert (alone["status"], alone["failure_reason"]) == ("ready", None)
    assert alone["speech_prints"] is not None
