"""Enrolling a voice from several samples, as the clone worker does it: what each sample adds to the set's
quality report (measured on the CPU executor), and what a provider is sent (the set's report itself is
`backend.policy.sample_set.report_of`).

A provider that takes several files (ElevenLabs: up to 25) gets every sample. One that takes a single
reference (Cartesia, Qwen, self-hosted, and `local`, whose profile is measured on what it gets) gets the
samples joined: an equal share of each, from its start, with a short pause between them, to the length
the provider does best with (the top of its recommended range).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import msgspec
import numpy as np

from backend.audio.measure import resample
from backend.audio.voice_set import Traits, joined, voice_traits
from backend.context import WorkerContext
from backend.domain.attempts import SetMember
from backend.providers.base import SampleRef, SampleRules
from backend.records.sample_rows import SampleRow
from backend.wav import float_to_wav, wav_to_float


async def member(ctx: WorkerContext, sample: SampleRow, ref: SampleRef, position: int) -> SetMember:
    """What the set's report needs of one sample: its original's speech and loudness (its quality report),
    its cleaned copy's (`ref`) pitch and spectral profile, measured on the CPU executor."""
    traits = await ctx.cpu.run(sample.owner_id, _traits_of, ref.data)
    report = sample.quality_report or {}
    return SetMember(
        sample_id=sample.id,
        position=position,
        speech_s=report.get("speechDurationS"),
        loudness_lufs=report.get("loudnessLufs"),
        median_pitch_hz=traits.median_pitch_hz,
        spectrum_db=traits.spectrum_db,
    )


async def sendable(
    ctx: WorkerContext, owner_id: uuid.UUID, rules: SampleRules, refs: Sequence[SampleRef]
) -> list[SampleRef]:
    """The references as the provider takes them: all of them, or joined into one (on the CPU executor)."""
    if len(refs) <= rules.max_files:
        return list(refs)
    seconds = rules.recommended_duration_s[1]
    if rules.max_duration_s is not None:
        seconds = min(seconds, rules.max_duration_s)
    data, rate, duration = await ctx.cpu.run(owner_id, _joined, [ref.data for ref in refs], seconds)
    return [
        msgspec.structs.replace(
            refs[0],
            data=data,
            mime_type="audio/wav",
            filename="samples.wav",
            # A URL would point at the first sample alone: the provider gets the joined bytes.
            public_url=None,
            duration_s=duration,
            sample_rate=rate,
            channels=1,
            snr_db=min((ref.snr_db for ref in refs if ref.snr_db is not None), default=None),
        )
    ]


def _traits_of(wav: bytes) -> Traits:
    signal, rate = wav_to_float(wav)
    return voice_traits(signal, rate)


def _joined(wavs: list[bytes], seconds: float) -> tuple[bytes, int, float]:
    """The cleaned copies (WAVs at the provider's rate) joined; with its rate and length."""
    decoded = [wav_to_float(wav) for wav in wavs]
    rate = decoded[0][1]
    signals = [s if r == rate else resample(s.astype(np.float32), r, rate).astype(np.float64) for s, r in decoded]
    signal = joined(signals, rate, seconds)
    return float_to_wav(signal, rate), rate, signal.size / rate
