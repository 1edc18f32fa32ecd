"""Measure a voice: pitch level and range, speaking-rate proxy, formants and average spectral envelope."""

from __future__ import annotations

import math
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
import pyworld

FRAME_PERIOD_MS: Final = 5.0
F0_FLOOR: Final = 60.0
F0_CEIL: Final = 700.0
#: Aperiodicity is analysed on every this many frames (see ``_aperiodicity``).
APERIODICITY_STEP: Final = 2
# Band centres (Hz) of the stored envelope summary, roughly mel-spaced up to the telephone-plus range.
BAND_HZ: Final = tuple(float(f) for f in np.geomspace(100.0, 8000.0, 24).round(1))
#: Formants are looked for below this frequency, in the signal resampled to twice it: an adult's first four
#: lie below it (Praat's default ceiling for women's voices; men's four lie lower still).
FORMANT_CEILING_HZ: Final = 5500.0
FORMANT_COUNT: Final = 4
#: Linear prediction order: two poles a formant up to the ceiling (five of them), the usual rule.
LPC_ORDER: Final = 10
#: Analysis frames (25 ms every 10 ms) and the pre-emphasis (+6 dB/octave above 50 Hz) that flattens the
#: glottal roll-off so the predictor spends its poles on the vocal tract.
LPC_FRAME_S: Final = 0.025
LPC_HOP_S: Final = 0.010
PRE_EMPHASIS_HZ: Final = 50.0
#: A pole broader than this is the spectrum's overall slope, not a resonance.
MAX_FORMANT_BANDWIDTH_HZ: Final = 400.0

Signal = npt.NDArray[np.float64]


class VoiceProfile(msgspec.Struct, frozen=True, kw_only=True):
    """What the local engine keeps of a sample (JSON-able via ``msgspec.to_builtins``)."""

    median_f0_hz: float
    f0_sd_semitones: float
    syllable_rate_hz: float
    envelope_db: list[float]
    band_hz: list[float] = msgspec.field(default_factory=lambda: list(BAND_HZ))
    voiced_ratio: float = 0.0
    duration_s: float = 0.0
    #: Median F1..F4 (Hz) over voiced frames; empty in profiles stored before formants were measured.
    formants_hz: list[float] = msgspec.field(default_factory=list)


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    """WORLD parameters of one signal."""

    f0: Signal
    sp: Signal
    ap: Signal | None


def world_analysis(
    x: Signal,
    sample_rate: int,
    *,
    with_aperiodicity: bool,
    frame_period_ms: float = FRAME_PERIOD_MS,
    dio_speed: int = 1,
) -> Analysis:
    """F0 (DIO + StoneMask), spectral envelope (CheapTrick) and optionally aperiodicity (D4C), one frame
    every ``frame_period_ms``; DIO looks for F0 in the signal decimated by ``dio_speed``."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, times = pyworld.dio(
        x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=frame_period_ms, speed=dio_speed
    )
    f0 = pyworld.stonemask(x, f0, times, sample_rate)
    sp = pyworld.cheaptrick(x, f0, times, sample_rate)
    ap = _aperiodicity(x, f0, times, sample_rate) if with_aperiodicity else None
    return Analysis(f0=f0, sp=sp, ap=ap)


def _aperiodicity(x: Signal, f0: Signal, times: Signal, sample_rate: int) -> Signal:
    """D4C on every other frame, interpolated between them.

    D4C is the costliest WORLD analysis step and aperiodicity changes slowly: analysed at half the frame
    rate, the resynthesis differs from the full-rate one by under 1 dB of log spectrum (0.02 dB of
    log-band spectrum at 5 ms frames, none measurable at 10 ms), for half D4C's time.
    """
    frames = len(f0)
    picked = np.unique(np.append(np.arange(0, frames, APERIODICITY_STEP), frames - 1))
    coarse = pyworld.d4c(x, np.ascontiguousarray(f0[picked]), np.ascontiguousarray(times[picked]), sample_rate)
    position = np.arange(frames)
    fine = np.empty((frames, coarse.shape[1]))
    for band in range(coarse.shape[1]):
        fine[:, band] = np.interp(position, picked, coarse[:, band])
    return fine


def mean_envelope_db(sp: Signal, f0: Signal, sample_rate: int) -> tuple[Signal, Signal]:
    """The mean envelope (dB) of voiced frames (of every frame when none is voiced), and its frequencies."""
    frames = sp[f0 > 0] if np.any(f0 > 0) else sp
    mean_db = 10.0 * np.log10(np.mean(frames, axis=0) + 1e-12)
    return np.linspace(0.0, sample_rate / 2.0, sp.shape[1]), mean_db


def envelope_bands(sp: Signal, f0: Signal, sample_rate: int) -> list[float]:
    """Mean log envelope (dB) of voiced frames at ``BAND_HZ``, with its mean removed (shape only)."""
    freqs, mean_db = mean_envelope_db(sp, f0, sample_rate)
    bands = np.interp(np.asarray(BAND_HZ), freqs, mean_db)
    return [round(float(v), 2) for v in bands - bands.mean()]


def formants(x: Signal, sample_rate: int, f0: Signal) -> list[float]:
    """Median F1..F4 (Hz) over the voiced frames (``f0``: one value every ``FRAME_PERIOD_MS``) of ``x``.

    Autocorrelation LPC on 25 ms Hamming frames of the signal resampled to twice ``FORMANT_CEILING_HZ`` and
    pre-emphasised; a frame's formants are its lowest narrow resonances. Empty when fewer than ten frames
    show four.
    """
    # Imported here: scipy.signal's import costs over a second of CPU, which every process start would pay.
    from scipy.signal import resample_poly  # noqa: PLC0415

    rate = round(2 * FORMANT_CEILING_HZ)
    common = math.gcd(sample_rate, rate)
    y = resample_poly(x, rate // common, sample_rate // common)
    y = np.append(y[:1], y[1:] - math.exp(-2 * math.pi * PRE_EMPHASIS_HZ / rate) * y[:-1])
    width, hop = round(LPC_FRAME_S * rate), round(LPC_HOP_S * rate)
    if len(y) < width:
        return []
    frames = np.lib.stride_tricks.sliding_window_view(y, width)[::hop]
    centres = (np.arange(len(frames)) * hop + width / 2) / rate
    at = np.minimum(np.round(centres * 1000.0 / FRAME_PERIOD_MS).astype(np.intp), len(f0) - 1)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    keep = (f0[at] > 0) & (energy > 0.1 * float(np.percentile(energy, 95)))
    if not np.any(keep):
        return []
    spectrum = np.fft.rfft(frames[keep] * np.hamming(width), 2 * width)
    r = np.fft.irfft(np.abs(spectrum) ** 2)[:, : LPC_ORDER + 1]
    roots = np.linalg.eigvals(_companion(_levinson(r, LPC_ORDER)))
    roots = np.where(roots.imag > 0, roots, 0)
    freq = np.angle(roots) * rate / (2 * math.pi)
    bandwidth = -np.log(np.maximum(np.abs(roots), 1e-12)) * rate / math.pi
    resonant = (bandwidth < MAX_FORMANT_BANDWIDTH_HZ) & (freq > 90.0) & (freq < FORMANT_CEILING_HZ - 100.0)
    lowest = np.sort(np.where(resonant, freq, np.inf), axis=1)[:, :FORMANT_COUNT]
    found = lowest[np.isfinite(lowest[:, -1])]
    if len(found) < 10:
        return []
    return [round(float(v), 1) for v in np.median(found, axis=0)]


def _levinson(r: Signal, order: int) -> Signal:
    """Prediction coefficients ``[1, a1 .. a_order]`` per row of autocorrelations ``r`` (Levinson-Durbin)."""
    a = np.zeros((len(r), order + 1))
    a[:, 0] = 1.0
    error = r[:, 0] * (1.0 + 1e-9) + 1e-12
    for i in range(1, order + 1):
        k = -(r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1)) / error
        a[:, 1:i] += k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        error *= 1.0 - k * k
    return a


def _companion(a: Signal) -> Signal:
    """Companion matrices whose eigenvalues are the roots of each row's polynomial ``z^p + a1 z^(p-1) + ..``."""
    order = a.shape[1] - 1
    matrices = np.zeros((len(a), order, order))
    matrices[:, 0, :] = -a[:, 1:]
    matrices[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    return matrices


def formant_dispersion(formants_hz: list[float]) -> float:
    """The average spacing of the formants (Hz), fitted as F_i = (2i - 1) / 2 * spacing: the resonances of a
    uniform tube, whose spacing is the speed of sound over twice the vocal tract's length."""
    odd = (2.0 * np.arange(1, len(formants_hz) + 1) - 1.0) / 2.0
    return float(np.dot(formants_hz, odd) / np.dot(odd, odd))


def syllable_rate(x: Signal, sample_rate: int) -> float:
    """Energy peaks per second of non-silent audio: a proxy for syllables per second."""
    hop = max(1, sample_rate // 100)  # 10 ms frames
    frames = len(x) // hop
    if frames < 10:
        return 0.0
    energy = np.sqrt(np.mean(x[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    kernel = np.hanning(7)
    smooth = np.convolve(energy, kernel / kernel.sum(), mode="same")
    threshold = 0.25 * float(np.percentile(smooth, 95))
    active = smooth > threshold
    peaks = 0
    last = -100
    for i in range(1, frames - 1):
        if active[i] and smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1] and i - last >= 10:
            peaks += 1
            last = i
    seconds = max(float(active.sum()) / 100.0, 0.1)
    return peaks / seconds


def pitch_stats(f0: Signal) -> tuple[float, float]:
    """Median F0 (Hz) and F0 spread (standard deviation in semitones) over voiced frames."""
    voiced = f0[f0 > 0]
    if voiced.size < 5:
        raise ValueError("no voiced speech found")
    median = float(np.median(voiced))
    spread = float(np.std(12.0 * np.log2(voiced / median)))
    return median, spread


def measure(x: Signal, sample_rate: int) -> VoiceProfile:
    """Profile a mono signal; raises ``ValueError`` when it holds no voiced speech."""
    analysis = world_analysis(x, sample_rate, with_aperiodicity=False)
    median, spread = pitch_stats(analysis.f0)
    return VoiceProfile(
        median_f0_hz=round(median, 2),
        f0_sd_semitones=round(spread, 3),
        syllable_rate_hz=round(syllable_rate(x, sample_rate), 3),
        envelope_db=envelope_bands(analysis.sp, analysis.f0, sample_rate),
        voiced_ratio=round(float(np.mean(analysis.f0 > 0)), 3),
        duration_s=round(len(x) / sample_rate, 3),
        formants_hz=formants(x, sample_rate, analysis.f0),
    )
