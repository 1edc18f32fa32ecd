"""An ElevenLabs enrolment from a stored sample, on a real database and Storage and the ElevenLabs fake: the
sample's quality report decides `remove_background_noise` (asked for only when the report measured background
noise), and the attempt records the choice and the SNR behind it in its `provider_metadata`. Whether the
sample was checked before the attempt (its stored report is read) or is checked by it (the report is made
then), the choice is the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.clone.step import process_attempt
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.samples.step import process_sample
from devkit.audio_corpus import RATE, noise, recording, rms, speech_mono, speech_wav, wav_bytes
from devkit.db import create_user, one, seed_consent
from fakes import ElevenLabsFake
from tests.integration.conftest import open_lifecycle
from tests.provider_support import ELEVEN_KEY

BUCKET = "voice-samples"


def noisy_speech_wav() -> bytes:
    """Speech under white noise 10 dB below it: the quality report measures about 15 dB and advises it."""
    voice = speech_mono(6.0, seed=3)
    take = recording(voice, seed=4)
    return wav_bytes(take + noise(take.size / RATE, rms(voice) / 10 ** (10 / 20), seed=7))


@pytest.fixture
async def ctx(
    cpu: CpuExecutor, db_dsn: str, tmp_path: Path, eleven_fake: tuple[ElevenLabsFake, str]
) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(
        cpu, db_dsn, tmp_path, ELEVENLABS_API_KEY=ELEVEN_KEY, ELEVENLABS_BASE_URL=eleven_fake[1]
    ) as lifecycle:
        yield lifecycle


async def uploaded_attempt(
    ctx: WorkerContext, db: psycopg.Connection[Any], audio: bytes, status: str
) -> dict[str, Any]:
    """An ElevenLabs clone attempt of a voice from a stored sample in `status` (`pending`: not checked yet)."""
    owner = create_user(db)
    voice = one(db, "insert into voices (owner_id, name) values (%s, 'Ada') returning id", (owner,))["id"]
    sample_id = uuid.uuid4()
    path = f"{owner}/samples/{sample_id}/original"
    await ctx.storage.upload(BUCKET, path, audio, "audio/wav")
    one(
        db,
        "insert into voice_samples (id, owner_id, voice_id, consent_id, object_path, sniffed_type, size_bytes,"
        " provider, status) values (%s, %s, %s, %s, %s, 'audio/wav', %s, 'elevenlabs', %s) returning id",
        (sample_id, owner, voice, seed_consent(db, owner), path, len(audio), status),
    )
    return one(
        db,
        "insert into voice_clone_attempts (owner_id, voice_id, sample_id, provider, source, preview_required)"
        " values (%s, %s, %s, 'elevenlabs', 'sample_upload', false) returning *",
        (owner, voice, sample_id),
    )


@pytest.mark.parametrize("checked_first", [True, False], ids=["stored-report", "report-made-by-the-attempt"])
@pytest.mark.parametrize(("audio", "denoise"), [(speech_wav, False), (noisy_speech_wav, True)], ids=["clean", "noisy"])
async def test_the_quality_report_decides_noise_removal_and_the_attempt_records_it(
    ctx: WorkerContext,
    db: psycopg.Connection[Any],
    eleven_fake: tuple[ElevenLabsFake, str],
    audio: Callable[[], bytes],
    denoise: bool,
    checked_first: bool,
) -> None:
    fake, _ = eleven_fake
    attempt = await uploaded_attempt(ctx, db, audio(), "pending" if checked_first else "ready")
    if checked_first:
        assert (await process_sample(ctx, attempt["sample_id"])).status == "ready"

    assert (await process_attempt(ctx, attempt["id"], "worker-1")).status == "ready"

    sample = one(db, "select quality_report from voice_samples where id = %s", (attempt["sample_id"],))
    report = sample["quality_report"]
    assert ("background noise" in report["advice"]) is denoise
    (add,) = fake.requests_to("POST", "/v1/voices/add")
    assert add.form_fields()["remove_background_noise"][0].text == ("true" if denoise else "false")
    recorded = one(db, "select provider_metadata from voice_clone_attempts where id = %s", (attempt["id"],))
    metadata = recorded["provider_metadata"]
    assert (metadata["remove_background_noise"], metadata["sample_snr_db"]) == (denoise, report["snrDb"])
