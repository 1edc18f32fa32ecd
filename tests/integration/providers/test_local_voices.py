"""Local voices kept in Postgres by the engine before hibari (Piper + WORLD): their stored profiles have no
formants, and they still speak, adapted, from what is stored (no re-enrolment)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import psycopg
import pytest
import pyworld

from backend.cpu import CpuExecutor
from backend.db.units import Database
from backend.providers.local.db_store import PostgresProfileStore
from backend.providers.local.engine import PITCH_TO_FORMANT, formant_ratio, voice_traits
from backend.providers.local.hibari_voice import HibariVoice
from backend.providers.local.provider import LocalProvider
from backend.wav import wav_to_float

#: A profile as the Piper + WORLD engine stored it (a man's voice read by espeak-ng at 99 Hz): every field
#: that engine measured, no ``formants_hz``.
OLD_PROFILE: dict[str, Any] = {
    "median_f0_hz": 99.41,
    "f0_sd_semitones": 1.936,
    "syllable_rate_hz": 7.621,
    "envelope_db": [
        *(4.95, 5.37, 6.18, 7.39, 8.7, 9.44, 11.14, 12.93, 13.13, 11.38, 8.25, 7.48),
        *(4.22, 1.66, 2.84, 1.44, -6.7, 0.75, -9.81, -8.82, -21.05, -22.71, -21.99, -26.18),
    ],
    "band_hz": [
        *(100.0, 121.0, 146.4, 177.1, 214.3, 259.2, 313.7, 379.5, 459.1, 555.5, 672.1, 813.2),
        *(983.8, 1190.3, 1440.1, 1742.4, 2108.1, 2550.5, 3085.8, 3733.5, 4517.1, 5465.2, 6612.2, 8000.0),
    ],
    "voiced_ratio": 0.661,
    "duration_s": 10.706,
}
TEXT = "Please call Stella and ask her to bring these things with her from the store."


def median_f0(x: np.ndarray, rate: int) -> float:
    f0, times = pyworld.dio(x, rate, f0_floor=50.0, f0_ceil=800.0, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, times, rate)
    return float(np.median(f0[f0 > 0]))


async def test_a_voice_stored_before_hibari_speaks_adapted_from_its_stored_profile(
    db: psycopg.Connection[Any], database: Database, cpu: CpuExecutor
) -> None:
    db.execute(
        "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
        " values ('local-piper-era', 'Ada', 'en', 'vg-piper-era', %s)",
        (json.dumps(OLD_PROFILE),),
    )
    provider = LocalProvider(PostgresProfileStore(database), cpu=cpu)
    voice = await provider.get("local-piper-era")
    assert voice.metadata["profile"]["formants_hz"] == []  # read as "not measured"

    result = await provider.synthesize(voice, TEXT)
    x, rate = wav_to_float(result.audio)
    streamed = b"".join([chunk async for chunk in provider.stream(voice, TEXT)])

    # Adapted: the stock voice speaks near 190 Hz; this one within a semitone of the stored 99 Hz, its
    # envelope warped by the ratio its pitch implies.
    assert voice_traits(HibariVoice.shared()).median_f0_hz > 150.0
    assert abs(12 * np.log2(median_f0(x, rate) / OLD_PROFILE["median_f0_hz"])) < 1.0
    traits = voice_traits(HibariVoice.shared())
    stored = await PostgresProfileStore(database).get("local-piper-era")
    assert stored is not None
    expected = (OLD_PROFILE["median_f0_hz"] / traits.median_f0_hz) ** PITCH_TO_FORMANT
    assert formant_ratio(stored.profile, traits) == pytest.approx(expected)
    # Streamed, the same adapted voice at the same rate, about as long: not the same samples, as a stream's first
    # phrase is cut short (backend.providers.local.provider.stream_phrases).
    y = np.frombuffer(streamed, dtype="<i2").astype(np.float64) / 32768
    assert abs(12 * np.log2(median_f0(y, rate) / OLD_PROFILE["median_f0_hz"])) < 1.0
    assert abs(y.size - x.size) < 0.1 * x.size
    # Nothing was rewritten: the row is as the old engine left it.
    row = db.execute("select profile from voicegate.local_voices where voice_id = 'local-piper-era'").fetchone()
    assert row == (OLD_PROFILE,)


async def test_voices_looked_up_together_each_get_their_own(db: psycopg.Connection[Any], database: Database) -> None:
    for voice_id, name in (("local-one", "One"), ("local-two", "Two")):
        db.execute(
            "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
            " values (%s, %s, 'en', %s, %s)",
            (voice_id, name, f"vg-{voice_id}", json.dumps(OLD_PROFILE)),
        )
    store = PostgresProfileStore(database)
    # Looked up in one turn, they are read in one statement (`Database.grouped`): each caller gets its own, a
    # voice asked for twice included, and None for a voice that is not stored.
    found = await asyncio.gather(*(store.get(v) for v in ("local-two", "local-gone", "local-one", "local-two")))
    assert [None if voice is None else voice.name for voice in found] == ["Two", None, "One", "Two"]
    assert await store.get("local-one") == found[2]  # and alone, the same
