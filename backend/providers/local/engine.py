"""Speak text with the Piper voice at the sample's pace, then move its pitch and envelope with WORLD."""

from __future__ import annotations

import functools
from typing import Final

import numpy as np
import pyworld

from backend.providers.local.piper import PiperVoice
from backend.providers.local.profile import (
    BAND_HZ,
    Signal,
    VoiceProfile,
    envelope_bands,
    pitch_stats,
    syllable_rate,
    world_analysis,
)

MAX_ENVELOPE_GAIN_DB: Final = 12.0
RANGE_SCALE_LIMITS: Final = (0.5, 2.0)
#: How far the voice's phoneme durations may be stretched (>1) or squeezed (<1) towards the sample's pace.
TEMPO_LIMITS: Final = (0.6, 1.6)
# WORLD's analysis of the Piper speech runs at half enrolment's frame rate (10 ms, aperiodicity every
# 20 ms) with DIO on the signal decimated by 2: a plain resynthesis then differs from the original by
# 0.5 dB more log-band spectrum than at 5 ms with full-rate DIO (6.8 against 6.3 dB, WORLD's own loss),
# for about half the WORLD time.
ADAPT_FRAME_PERIOD_MS: Final = 10.0
ADAPT_DIO_SPEED: Final = 2
#: Read once per voice to learn its own pace (syllables a second at its own durations).
PACE_TEXT: Final = (
    "Every voice keeps its own pace. This short passage is read once, so the engine knows how quickly "
    "the stock voice speaks before it slows down or hurries to match a sample."
)


def render(
    text: str, profile: VoiceProfile, *, language: str = "en", voice: PiperVoice | None = None
) -> tuple[Signal, int]:
    """Return mono float samples in [-1, 1] and their sample rate for ``text`` in ``profile``'s voice."""
    piper = voice or PiperVoice.shared()
    speech = piper.speak(text, language, length_scale=length_scale(voice_pace(piper), profile.syllable_rate_hz))
    return adapt(speech.astype(np.float64), piper.sample_rate, profile), piper.sample_rate


@functools.cache
def voice_pace(voice: PiperVoice) -> float:
    """Syllables a second ``voice`` speaks at its own durations (measured on ``PACE_TEXT``, once)."""
    return syllable_rate(voice.speak(PACE_TEXT).astype(np.float64), voice.sample_rate)


def length_scale(source_rate: float, target_rate: float) -> float:
    """The factor on the voice's durations that brings its syllable rate towards the sample's, within
    ``TEMPO_LIMITS`` (1.0 when either rate is unknown)."""
    if source_rate <= 0 or target_rate <= 0:
        return 1.0
    low, high = TEMPO_LIMITS
    return float(np.clip(source_rate / target_rate, low, high))


def adapt(x: Signal, rate: int, profile: VoiceProfile) -> Signal:
    """Move speech ``x`` towards ``profile`` with WORLD: pitch level and range and spectral envelope;
    the result peaks at 0.9."""
    analysis = world_analysis(
        x, rate, with_aperiodicity=True, frame_period_ms=ADAPT_FRAME_PERIOD_MS, dio_speed=ADAPT_DIO_SPEED
    )
    assert analysis.ap is not None  # noqa: S101 - requested above
    f0 = shift_pitch(analysis.f0, profile)
    sp = shape_envelope(analysis.sp, analysis.f0, rate, profile)
    y = pyworld.synthesize(f0, sp, analysis.ap, rate, ADAPT_FRAME_PERIOD_MS)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y * (0.9 / peak) if peak > 0 else y


def shift_pitch(f0: Signal, profile: VoiceProfile) -> Signal:
    """Map the log-F0 contour onto the target median and spread (unvoiced frames stay 0)."""
    source_median, source_spread = pitch_stats(f0)
    low, high = RANGE_SCALE_LIMITS
    scale = float(np.clip(profile.f0_sd_semitones / max(source_spread, 1e-3), low, high))
    out = np.zeros_like(f0)
    voiced = f0 > 0
    semitones = 12.0 * np.log2(f0[voiced] / source_median) * scale
    out[voiced] = profile.median_f0_hz * np.power(2.0, semitones / 12.0)
    return out


def shape_envelope(sp: Signal, f0: Signal, rate: int, profile: VoiceProfile) -> Signal:
    """Tilt the source's average envelope towards the sample's, within ±12 dB."""
    source = np.asarray(envelope_bands(sp, f0, rate))
    target = np.asarray(profile.envelope_db)
    gain_db = np.clip(target - source, -MAX_ENVELOPE_GAIN_DB, MAX_ENVELOPE_GAIN_DB)
    freqs = np.linspace(0.0, rate / 2.0, sp.shape[1])
    per_bin = np.interp(freqs, np.asarray(BAND_HZ), gain_db)
    return np.ascontiguousarray(sp * np.power(10.0, per_bin / 10.0))
