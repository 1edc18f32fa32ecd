"""Several samples of one voice: what tells their speakers apart (median pitch and a coarse spectral
profile of the speech), their report as a set, and the join a provider of one reference is sent.

The traits are measured on the cleaned copies (loudness-normalised, so the spectral profile is compared
with its mean level removed); the loudness compared between samples is the originals' (each sample's
quality report), since the cleaned copies were all brought to one level.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from backend.audio.measure import VAD_FRAME_S, detect_speech

F64 = npt.NDArray[np.float64]

#: Fundamental frequencies a speaking voice reaches, low bass to child.
PITCH_RANGE_HZ: Final = (60.0, 450.0)
#: An autocorrelation peak this high (of the frame's energy) marks a voiced frame.
VOICED_CORRELATION: Final = 0.5
#: Frames of this length (two VAD frames) hold at least three periods of the lowest pitch.
PITCH_FRAME_S: Final = 0.06
#: Log-spaced bands of the spectral profile, between these edges (Hz).
SPECTRUM_BANDS: Final = 16
SPECTRUM_EDGES_HZ: Final = (100.0, 7000.0)
SPECTRUM_FFT: Final = 2048
#: A sample further than this from the set's most typical one, in median pitch (semitones) or in spectral
#: profile (RMS dB over the bands, level removed), is flagged as perhaps another speaker. One speaker's
#: median pitch moves by a couple of semitones between takes; another speaker's is usually far more.
OTHER_SPEAKER_SEMITONES: Final = 4.0
OTHER_SPEAKER_SPECTRUM_DB: Final = 6.0
#: Originals whose loudness differs by more than this (LU) are flagged: the takes were recorded apart.
LOUDNESS_SPREAD_LU: Final = 10.0
#: Pause put between the samples a single-reference provider receives joined.
JOIN_PAUSE_S: Final = 0.4


@dataclass(frozen=True, slots=True)
class Traits:
    """A sample's median pitch (None without voiced speech) and its spectral profile (None without speech)."""

    median_pitch_hz: float | None
    spectrum_db: list[float] | None


def voice_traits(mono: F64, rate: int) -> Traits:
    """Median pitch and the spectral profile of the speech frames of `mono` (a cleaned sample)."""
    speech = detect_speech(mono.astype(np.float32), rate)
    frame = round(VAD_FRAME_S * rate)
    starts = [int(index) * frame for index in np.flatnonzero(speech.frames)]
    pitch_frame = round(PITCH_FRAME_S * rate)
    pitches = [p for start in starts if (p := _pitch(mono[start : start + pitch_frame], rate)) is not None]
    return Traits(
        median_pitch_hz=float(np.median(pitches)) if pitches else None,
        spectrum_db=_spectrum(mono, rate, starts) if starts else None,
    )


def _pitch(window: F64, rate: int) -> float | None:
    """The frame's fundamental by autocorrelation, None when it is not clearly voiced."""
    low, high = round(rate / PITCH_RANGE_HZ[1]), round(rate / PITCH_RANGE_HZ[0])
    if window.size <= high:
        return None
    centred = window - window.mean()
    spectrum = np.fft.rfft(centred, 2 * window.size)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum))[: window.size]
    if correlation[0] <= 0:
        return None
    lag = low + int(np.argmax(correlation[low:high]))
    if correlation[lag] / correlation[0] < VOICED_CORRELATION:
        return None
    return rate / lag


def _spectrum(mono: F64, rate: int, starts: list[int]) -> list[float]:
    """Mean power of the speech frames in log-spaced bands, in dB around their mean."""
    window = np.hanning(SPECTRUM_FFT)
    power = np.zeros(SPECTRUM_FFT // 2 + 1)
    for start in starts:
        piece = mono[start : start + SPECTRUM_FFT]
        if piece.size == SPECTRUM_FFT:
            power += np.abs(np.fft.rfft(piece * window)) ** 2
    freqs = np.fft.rfftfreq(SPECTRUM_FFT, 1 / rate)
    top = min(SPECTRUM_EDGES_HZ[1], rate / 2)
    edges = np.geomspace(SPECTRUM_EDGES_HZ[0], top, SPECTRUM_BANDS + 1)
    bands = [float(power[(freqs >= lo) & (freqs < hi)].mean() + 1e-12) for lo, hi in itertools.pairwise(edges)]
    levels = 10 * np.log10(bands)
    return [round(float(level), 2) for level in levels - levels.mean()]


class SetSample(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One sample of a set, as its report shows it."""

    sample_id: str
    #: Seconds of speech in the original (its quality report).
    speech_s: float | None
    #: The original's integrated loudness (LUFS).
    loudness_lufs: float | None
    median_pitch_hz: float | None


class SetWarning(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Something about the set its owner should know: `other_speaker` (a sample unlike the others in
    pitch or timbre) or `loudness_mismatch` (takes recorded far apart in level)."""

    code: str
    message: str
    sample_id: str | None = None


class SetReport(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The quality of a voice's samples taken together; `measured` is false until the enrolment has
    measured them (pitch and timbre need the cleaned audio)."""

    sample_count: int
    measured: bool
    #: Seconds of speech over all the samples.
    speech_s: float
    #: Loudest minus quietest original (LU); None with fewer than two measured.
    loudness_spread_lu: float | None
    #: Highest minus lowest median pitch (semitones); None with fewer than two measured.
    pitch_spread_semitones: float | None
    samples: list[SetSample]
    warnings: list[SetWarning]


@dataclass(frozen=True, slots=True)
class Member:
    """What the report is made from, for one sample."""

    sample_id: str
    speech_s: float | None
    loudness_lufs: float | None
    traits: Traits | None


def set_report(members: list[Member]) -> SetReport:
    """The set's report: totals, spreads, and a warning for each sample that looks like another speaker
    (compared with the set's most typical sample) and for takes far apart in loudness."""
    loudness = [m.loudness_lufs for m in members if m.loudness_lufs is not None]
    pitches = [m.traits.median_pitch_hz for m in members if m.traits and m.traits.median_pitch_hz]
    warnings = _other_speakers(members)
    loudness_spread = max(loudness) - min(loudness) if len(loudness) > 1 else None
    if loudness_spread is not None and loudness_spread > LOUDNESS_SPREAD_LU:
        message = f"The samples differ by {loudness_spread:.0f} LU in loudness: they may sound recorded apart."
        warnings.append(SetWarning(code="loudness_mismatch", message=message))
    return SetReport(
        sample_count=len(members),
        measured=all(m.traits is not None for m in members),
        speech_s=round(sum(m.speech_s or 0.0 for m in members), 2),
        loudness_spread_lu=None if loudness_spread is None else round(loudness_spread, 1),
        pitch_spread_semitones=round(_semitones(max(pitches), min(pitches)), 1) if len(pitches) > 1 else None,
        samples=[
            SetSample(
                sample_id=m.sample_id,
                speech_s=m.speech_s,
                loudness_lufs=m.loudness_lufs,
                median_pitch_hz=None if m.traits is None else m.traits.median_pitch_hz,
            )
            for m in members
        ],
        warnings=warnings,
    )


@dataclass(frozen=True, slots=True)
class _Voiced:
    sample_id: str
    pitch_hz: float
    spectrum_db: F64


def _other_speakers(members: list[Member]) -> list[SetWarning]:
    measured = [
        _Voiced(m.sample_id, m.traits.median_pitch_hz, np.asarray(m.traits.spectrum_db))
        for m in members
        if m.traits is not None and m.traits.median_pitch_hz and m.traits.spectrum_db
    ]
    if len(measured) < 2:
        return []
    # The most typical sample (least far from all the others) stands for the speaker; ties go to the first.
    typical = min(measured, key=lambda m: sum(_distance(m, other) for other in measured))
    warnings = []
    for member in measured:
        pitch_st, spectrum_db = _apart(member, typical)
        if member is not typical and (pitch_st > OTHER_SPEAKER_SEMITONES or spectrum_db > OTHER_SPEAKER_SPECTRUM_DB):
            message = (
                f"This sample may be another speaker: its pitch is {pitch_st:.1f} semitones and its timbre"
                f" {spectrum_db:.1f} dB from the other samples'."
            )
            warnings.append(SetWarning(code="other_speaker", message=message, sample_id=member.sample_id))
    return warnings


def _apart(one: _Voiced, other: _Voiced) -> tuple[float, float]:
    """Semitones between the median pitches and RMS dB between the spectral profiles of two samples."""
    gap = one.spectrum_db - other.spectrum_db
    return abs(_semitones(one.pitch_hz, other.pitch_hz)), float(np.sqrt(np.mean(gap**2)))


def _distance(one: _Voiced, other: _Voiced) -> float:
    pitch, spectrum = _apart(one, other)
    return pitch / OTHER_SPEAKER_SEMITONES + spectrum / OTHER_SPEAKER_SPECTRUM_DB


def _semitones(high: float, low: float) -> float:
    return 12 * math.log2(high / low)


def joined(signals: list[F64], rate: int, seconds: float) -> F64:
    """The samples (mono, at `rate`) as one, a short pause between them, at most `seconds` long: each
    sample gives an equal share of the time, from its start, and what a short one leaves goes to the
    others, so every sample is heard."""
    pause = round(JOIN_PAUSE_S * rate)
    budget = max(0, round(seconds * rate) - pause * (len(signals) - 1))
    lengths = _shares([signal.size for signal in signals], budget)
    pieces: list[F64] = []
    for signal, length in zip(signals, lengths, strict=True):
        if pieces:
            pieces.append(np.zeros(pause))
        pieces.append(signal[:length])
    return np.concatenate(pieces)


def _shares(sizes: list[int], budget: int) -> list[int]:
    """Equal shares of `budget` among `sizes`, none more than its size, the rest spread over the longer."""
    shares = [0] * len(sizes)
    left = sorted(range(len(sizes)), key=lambda index: sizes[index])
    while left:
        fair = budget // len(left)
        index = left.pop(0)
        shares[index] = min(sizes[index], fair)
        budget -= shares[index]
    return shares
