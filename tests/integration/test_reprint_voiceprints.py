"""Prints of GE2E, the speaker encoder before ECAPA-TDNN, printed again from the recordings they were taken of
(backend/samples/reprint.py), on a real database with pgvector and the real Storage stand-in, with real speech (the
LibriSpeech clips kept with the tests, CC BY 4.0). A consent whose reading is kept and a sample whose cleaned copy
is kept get ECAPA-TDNN's prints (the sample its partials too) and join the registry again; a sample whose copy is
gone loses its print; a sample checked under a consent still printed by GE2E re-prints that consent first and is
judged against its new print, not refused (its reading unreadable, the step is tried again rather than the sample
failed). The migration that changed encoders (20261128081500) leaves exactly such rows: 1,024-byte prints, no
partials, an empty registry."""

from __future__ import annotations

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
from backend.errors import StorageUnavailable
from backend.samples import reprint
from backend.samples.reprint import reprint_all, reprint_consent
from backend.samples.step import process_sample
from backend.voiceprint import THRESHOLD, SpeechPrints, Voiceprint, stored_print, voiceprint
from devkit.audio_corpus import wav_bytes
from devkit.db import create_user, one
from tests.integration.conftest import open_lifecycle
from tests.unit.test_cpu import nice_here, tier_here

CLIPS = Path(__file__).resolve().parents[1] / "clips" / "librispeech"
BUCKET = "voice-samples"
RATE = 16000
F32 = npt.NDArray[np.float32]
Db = psycopg.Connection[Any]
pytestmark = pytest.mark.timeout(300)
#: A print as GE2E stored it: 256 float32, a unit vector.
GE2E_PRINT = (np.full(256, 1 / 16, dtype="<f4")).tobytes()


def clip(name: str) -> F32:
    samples, rate = soundfile.read(CLIPS / name.split("-", maxsplit=1)[0] / f"{name}.flac", dtype="float32")
    assert rate == RATE
    return np.asarray(samples, dtype=np.float32)


READING = clip("2414-128291-0005")
HIS = clip("2414-128291-0007")


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


async def ge2e_consent(ctx: WorkerContext, db: Db, owner: uuid.UUID) -> uuid.UUID:
    """A verified spoken consent of `owner` whose reading (his) is kept and whose print is GE2E's."""
    consent_id = uuid.uuid4()
    path = f"{owner}/consents/{consent_id}/recording"
    await ctx.storage.upload(BUCKET, path, wav_bytes(READING, RATE), "audio/wav")
    db.execute(
        "insert into voice_consents (id, owner_id, subject_name, consent_text_version, kind, status, phrase, code,"
        " language, expires_at, voiceprint, statement_sample_path, verified_at, evidence_expires_at)"
        " values (%s, %s, 'Ashwin', 'spoken-2026-11', 'spoken', 'verified', 'I, Ashwin, ...', '1234', 'en',"
        " now() + interval '10 minutes', %s, %s, now(), now() + interval '30 days')",
        (consent_id, owner, GE2E_PRINT, path),
    )
    return consent_id


def ge2e_sample(db: Db, owner: uuid.UUID, consent_id: uuid.UUID, copy: str | None) -> uuid.UUID:
    """A ready sample of `owner` with a GE2E print, its cleaned copy at `copy` (None: gone)."""
    sample_id = uuid.uuid4()
    db.execute(
        "insert into voice_samples (id, owner_id, consent_id, object_path, processed_object_path, sniffed_type,"
        " size_bytes, provider, status, voiceprint) values (%s, %s, %s, %s, %s, 'audio/wav', 1, 'local', 'ready', %s)",
        (sample_id, owner, consent_id, f"{owner}/samples/{sample_id}/original", copy, GE2E_PRINT),
    )
    return sample_id


def registered(db: Db) -> dict[uuid.UUID, int]:
    rows = db.execute(
        "select coalesce(consent_id, sample_id), extensions.vector_dims(embedding) from voicegate.voice_prints"
    )
    return dict(rows.fetchall())


async def test_ge2e_prints_are_printed_again_from_their_recordings_and_registered(
    ctx: WorkerContext, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiers: dict[str, set[tuple[str, int]]] = {}

    def watch(name: str) -> None:  # each is a long call (a voiceprint of up to 60 s of speech): watched, not replaced
        real = getattr(reprint, name)

        def call(data: bytes) -> object:
            tiers.setdefault(name, set()).add(tier_here())
            return real(data)

        monkeypatch.setattr(reprint, name, call)

    watch("_print")
    watch("_prints")
    owner = create_user(db)
    consent_id = await ge2e_consent(ctx, db, owner)
    copy = f"{owner}/samples/{uuid.uuid4()}/processed.wav"
    await ctx.storage.upload(BUCKET, copy, wav_bytes(HIS, RATE), "audio/wav")
    kept = ge2e_sample(db, owner, consent_id, copy)
    gone = ge2e_sample(db, owner, consent_id, None)

    listed = [done async for done in reprint_all(ctx.db, None, ctx.cpu, actor="test")]
    assert [(d.kind, d.id, d.outcome) for d in listed] == [
        ("consent", consent_id, "reprinted"),
        *sorted([("sample", kept, "reprinted"), ("sample", gone, "dropped")], key=lambda row: row[1]),
    ]
    assert registered(db) == {}, "a dry run changes nothing"

    done = [d async for d in reprint_all(ctx.db, ctx.storage, ctx.cpu, actor="test")]

    assert sorted(d.outcome for d in done) == ["dropped", "reprinted", "reprinted"]
    consent = stored_print(one(db, "select voiceprint from voice_consents where id = %s", (consent_id,))["voiceprint"])
    direct = voiceprint(READING, RATE)
    assert consent is not None
    assert direct is not None
    assert consent.similarity(direct) > 0.99  # the reading as stored: 16-bit WAV
    row = one(db, "select voiceprint, speech_prints from voice_samples where id = %s", (kept,))
    sample = stored_print(row["voiceprint"])
    assert sample is not None
    assert sample.similarity(consent) >= THRESHOLD
    assert len(SpeechPrints.from_bytes(row["speech_prints"])) >= 3
    assert one(db, "select voiceprint from voice_samples where id = %s", (gone,))["voiceprint"] is None
    assert registered(db) == {consent_id: 192, kept: 192}
    assert [d async for d in reprint_all(ctx.db, ctx.storage, ctx.cpu, actor="test")] == [], "nothing is left"
    assert tiers == {"_print": {("queued", nice_here())}, "_prints": {("queued", nice_here())}}


async def test_a_sample_under_a_ge2e_consent_reprints_it_and_is_judged_against_the_new_print(
    ctx: WorkerContext, db: Db
) -> None:
    owner = create_user(db)
    consent_id = await ge2e_consent(ctx, db, owner)
    sample_id = uuid.uuid4()
    path = f"{owner}/samples/{sample_id}/original"
    data = wav_bytes(HIS, RATE)
    await ctx.storage.upload(BUCKET, path, data, "audio/wav")
    db.execute(
        "insert into voice_samples (id, owner_id, consent_id, object_path, sniffed_type, size_bytes, provider,"
        " status) values (%s, %s, %s, %s, 'audio/wav', %s, 'local', 'pending')",
        (sample_id, owner, consent_id, path, len(data)),
    )

    await process_sample(ctx, sample_id)

    row = one(db, "select status, speaker_match, failure_reason from voice_samples where id = %s", (sample_id,))
    assert (row["status"], row["failure_reason"]) == ("ready", None), row["failure_reason"]
    assert row["speaker_match"] >= THRESHOLD
    printed = one(db, "select voiceprint from voice_consents where id = %s", (consent_id,))["voiceprint"]
    assert isinstance(stored_print(printed), Voiceprint)
    assert await reprint_consent(ctx.db, ctx.storage, ctx.cpu, consent_id, actor="test") is None, "printed once"


async def test_a_sample_under_a_ge2e_consent_whose_reading_cannot_be_read_waits_rather_than_fails(
    ctx: WorkerContext, db: Db
) -> None:
    owner = create_user(db)
    consent_id = await ge2e_consent(ctx, db, owner)
    path = one(db, "select statement_sample_path from voice_consents where id = %s", (consent_id,))
    await ctx.storage.remove(BUCKET, [path["statement_sample_path"]])
    sample_id = uuid.uuid4()
    original = f"{owner}/samples/{sample_id}/original"
    data = wav_bytes(HIS, RATE)
    await ctx.storage.upload(BUCKET, original, data, "audio/wav")
    db.execute(
        "insert into voice_samples (id, owner_id, consent_id, object_path, sniffed_type, size_bytes, provider,"
        " status) values (%s, %s, %s, %s, 'audio/wav', %s, 'local', 'pending')",
        (sample_id, owner, consent_id, original, len(data)),
    )

    with pytest.raises(StorageUnavailable, match="the consent's voiceprint could not be made again"):
        await process_sample(ctx, sample_id)

    row = one(db, "select status, failure_reason from voice_samples where id = %s", (sample_id,))
    assert row["failure_reason"] is None, "not refused: the step is tried again"
