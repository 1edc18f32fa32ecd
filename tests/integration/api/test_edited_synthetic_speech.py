"""voicegate's own speech, edited as an evader edits it first (its pitch shifted by one or two semitones, its
speed changed by 5 %, with ffmpeg as sox's `pitch` and `speed` do it), is still refused: as a sample, through the
sample check on the real database and Storage stand-in (failed `synthetic_speech`), and as a spoken consent's
reading through the API (rejected `synthetic_speech`, audited). Before, a one-semitone shift hid the mark and
both were accepted. The bundled voice speaks, marked as a render is marked."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from scipy.signal import resample_poly

from backend.audio.decode import decode_audio
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.watermark import detect, mark
from devkit.audio_edits import pitch_shifted, sped
from devkit.db import Conn
from tests.integration.api.conftest import User
from tests.integration.api.test_consent_states import hibari_says, new_consent, record, verdicts
from tests.integration.conftest import open_lifecycle
from tests.integration.test_sample_speakers import RATE, checked

Client = AsyncTestClient  # type: ignore[type-arg]
pytestmark = pytest.mark.timeout(300)
SENTENCE = "Our new opening hours start next Monday, from eight in the morning until six in the evening."
EDITS: dict[str, Callable[[np.ndarray, int], bytes]] = {
    "pitch +1 st": lambda x, r: pitch_shifted(x, r, 100),
    "pitch -1 st": lambda x, r: pitch_shifted(x, r, -100),
    "pitch +2 st": lambda x, r: pitch_shifted(x, r, 200),
    "pitch -2 st": lambda x, r: pitch_shifted(x, r, -200),
    "speed 1.05": lambda x, r: sped(x, r, 1.05),
}


def edited_render(text: str, edit: str, rate: int | None = None) -> bytes:
    """The bundled voice saying ``text`` (brought to ``rate`` when given), marked as a job's render is, then
    edited: a WAV at its rate, checked to carry a mark only the warp search finds (the detector as it was, which
    reads the audio at its own pitch alone, misses it)."""
    spoken = decode_audio(hibari_says(text))
    samples, sample_rate = spoken.samples.mean(axis=0), spoken.sample_rate
    if rate is not None:
        common = math.gcd(rate, sample_rate)
        samples, sample_rate = resample_poly(samples, rate // common, sample_rate // common), rate
    made = EDITS[edit](mark(samples, sample_rate), sample_rate)
    heard = decode_audio(made)
    found = detect(heard.samples, heard.sample_rate)
    assert found.present, found
    assert found.cents != 0, f"found by the warp search alone: {found}"
    return made


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as lifecycle:
        yield lifecycle


@pytest.mark.parametrize("edit", EDITS)
async def test_edited_synthetic_speech_is_refused_as_a_sample(ctx: WorkerContext, sql: Conn, edit: str) -> None:
    heard = decode_audio(edited_render(SENTENCE, edit, RATE))
    assert heard.sample_rate == RATE

    row: Any = await checked(ctx, sql, heard.samples.mean(axis=0).astype(np.float32))

    assert row["status"] == "failed", row
    assert row["failure_reason"].startswith("synthetic_speech: "), row["failure_reason"]


async def test_edited_synthetic_speech_is_refused_as_a_consent_reading(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    consent = await new_consent(client, user)

    for edit in EDITS:
        verdict = await record(client, user, consent, edited_render(consent["phrase"], edit))
        assert verdict.status_code == 200, verdict.text
        assert (verdict.json()["status"], verdict.json()["reason"]) == ("rejected", "synthetic_speech"), edit

    assert verdicts(sql, consent) == ["consent.rejected"] * len(EDITS)
