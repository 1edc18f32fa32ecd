"""Speak text with the Piper voice, then move it towards a measured voice profile with WORLD."""

from __future__ import annotations

from typing import Final

import numpy as np
import pyworld

from backend.providers.local.piper import PiperVoice
from backend.providers.local.profile import (
    BAND_HZ,
    FRAME_PERIOD_MS,
    Signal,
    VoiceProfile,
    envelope_bands,
    pitch_stats,
    syllable_rate,
    world_analysis,
)

MAX_ENVELOPE_GAIN_DB: Final = 12.0
RANGE_SCALE_LIMITS: Final = (0.5, 2.0)
TEMPO_LIMITS: Final = (0.6, 1.6)


def render(
    text: str, profile: VoiceProfile, *, language: str = "en", voice: PiperVoice | None = None
) -> tuple[Signal, int]:
    """Return mono float samples in [-1, 1] and their sample rate for ``text`` in ``profile``'s voice."""
    piper = voice or PiperVoice.shared()
    speech = piper.speak(text, language)
    return adapt(speech.astype(np.float64), piper.sample_rate, profile), piper.sample_rate


def adapt(x: Signal, rate: int, profile: VoiceProfile) -> Signal:
    """Move speech ``x`` towards ``profile`` with WORLD: pitch level and range, spectral envelope and
    syllable rate; the result peaks at 0.9."""
    analysis = world_analysis(x, rate, with_aperiodicity=True)
    assert analysis.ap is not None  # noqa: S101 - requested above
    f0 = _shift_pitch(analysis.f0, profile)
    sp = _shape_envelope(analysis.sp, analysis.f0, rate, profile)
    f0, sp, ap = _retime(f0, sp, analysis.ap, syllable_rate(x, rate), profile.syllable_rate_hz)
    y = pyworld.synthesize(f0, sp, ap, rate, FRAME_PERIOD_MS)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y * (0.9 / peak) if peak > 0 else y


def _shift_pitch(f0: Signal, profile: VoiceProfile) -> Signal:
    """Map the log-F0 contour onto the target median and spread (unvoiced frames stay 0)."""
    source_median, source_spread = pitch_stats(f0)
    low, high = RANGE_SCALE_LIMITS
    scale = float(np.clip(profile.f0_sd_semitones / max(source_spread, 1e-3), low, high))
    out = np.zeros_like(f0)
    voiced = f0 > 0
    semitones = 12.0 * np.log2(f0[voiced] / source_median) * scale
    out[voiced] = profile.median_f0_hz * np.power(2.0, semitones / 12.0)
    return out


def _shape_envelope(sp: Signal, f0: Signal, rate: int, profile: VoiceProfile) -> Signal:
    """Tilt the source's average envelope towards the sample's, within ±12 dB."""
    source = np.asarray(envelope_bands(sp, f0, rate))
    target = np.asarray(profile.envelope_db)
    gain_db = np.clip(target - source, -MAX_ENVELOPE_GAIN_DB, MAX_ENVELOPE_GAIN_DB)
    freqs = np.linspace(0.0, rate / 2.0, sp.shape[1])
    per_bin = np.interp(freqs, np.asarray(BAND_HZ), gain_db)
    return np.ascontiguousarray(sp * np.power(10.0, per_bin / 10.0))


def _retime(
    f0: Signal, sp: Signal, ap: Signal, source_rate: float, target_rate: float
) -> tuple[Signal, Signal, Signal]:
    """Stretch or squeeze the frame sequence so the syllable rate approaches the sample's."""
    if source_rate <= 0 or target_rate <= 0:
        return f0, sp, ap
    low, high = TEMPO_LIMITS
    length_factor = float(np.clip(source_rate / target_rate, low, high))
    frames = len(f0)
    new_frames = max(1, round(frames * length_factor))
    index = np.minimum((np.arange(new_frames) / length_factor).astype(int), frames - 1)
    return (
        np.ascontiguousarray(f0[index]),
        np.ascontiguousarray(sp[index]),
        np.ascontiguousarray(ap[index]),
    )
