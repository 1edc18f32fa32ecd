"""Preprocessing into what a provider wants: mono, its sample rate, trimmed, denoised, loudness-normalised.

Loudness target: -20 LUFS integrated (EBU R128 measurement), true peak at most -1 dBTP. -20 LUFS sits
in the range the cloning providers recommend for reference speech (about -23 to -18 LUFS) and leaves
19 dB of headroom, about speech's crest factor, so the look-ahead limiter touches only the rarest
peaks; -1 dBTP keeps the providers' own resampling and lossy re-encoding from clipping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from backend.audio.denoise import SpectralDenoiser
from backend.audio.measure import (
    F32,
    MIN_PAUSE_S,
    VAD_FRAME_S,
    Measurements,
    Speech,
    integrated_loudness,
    peak_envelope,
    resample,
    true_peak,
)
from backend.wav import float_to_wav

TARGET_LUFS: Final = -20.0
PEAK_CEILING_DBTP: Final = -1.0
#: Silence kept before the first and after the last speech frame, so no onset or tail is cut.
TRIM_PAD_S: Final = 0.2
#: Noise gating removes 80% of the noise amplitude (-14 dB) rather than all of it: full gating leaves
#: "musical noise" and dulls the voice, which matters more to a clone than a faint, steady floor.
NOISE_PROP_DECREASE: Final = 0.8
#: STFT length for noise gating: about 25 ms (the speech-analysis norm), rounded to a power of two.
NOISE_WINDOW_S: Final = 0.025
#: Noise gating runs on chunks this long (each padded by one STFT window on both sides, so the chunks
#: join seamlessly): the denoiser's STFT and mask arrays take about 160 bytes per sample, so a minute
#: gated whole would need some 230 MB, a 5 s chunk under 20 MB.
NOISE_CHUNK_S: Final = 5.0
#: At most this much of the noise (the pauses, or the signal itself) sets the denoiser's thresholds.
MAX_NOISE_S: Final = 10.0
#: The limiter aims this far under the ceiling, so 16-bit rounding and another meter's oversampling
#: filter still read the output under it.
LIMITER_MARGIN_DB: Final = 0.1
#: Limiter look-ahead and release (each side of a peak).
LIMITER_WINDOW_S: Final = 0.005
_LOUDNESS_ROUNDS: Final = 3
_LOUDNESS_TOLERANCE_LU: Final = 0.3


@dataclass(frozen=True, slots=True)
class Processed:
    """The preprocessed sample as 16-bit PCM mono WAV, with its measured loudness and true peak."""

    wav: bytes
    sample_rate: int
    duration_s: float
    loudness_lufs: float | None
    true_peak_dbtp: float | None


def trim_bounds(speech: Speech, duration_s: float) -> tuple[float, float]:
    """Start and end (seconds) of the sample with leading and trailing non-speech cut, padding kept."""
    span = speech.span_s()
    if span is None:
        return 0.0, duration_s
    return max(0.0, span[0] - TRIM_PAD_S), min(duration_s, span[1] + TRIM_PAD_S)


def preprocess(measured: Measurements, target_rate: int) -> Processed:
    """Mono at ``target_rate``, silence trimmed, noise gated, normalised to ``TARGET_LUFS`` under the ceiling."""
    mono = resample(measured.mono, measured.sample_rate, target_rate)
    start_s, end_s = trim_bounds(measured.speech, measured.duration_s)
    segment = mono[int(start_s * target_rate) : int(end_s * target_rate)]
    denoised = reduce_noise(segment, target_rate, pauses(mono, target_rate, measured.speech))
    normalised, loudness, peak = normalise_loudness(denoised, target_rate)
    return Processed(
        wav=float_to_wav(normalised.astype(np.float64), target_rate),
        sample_rate=target_rate,
        duration_s=normalised.size / target_rate,
        loudness_lufs=loudness,
        true_peak_dbtp=20 * math.log10(peak) if peak > 0 else None,
    )


def reduce_noise(signal: F32, rate: int, noise: F32 | None) -> F32:
    """Stationary spectral gating with thresholds from ``noise`` (the pauses), or from the signal itself,
    chunk by chunk so memory stays bounded whatever the length."""
    n_fft = 1 << round(math.log2(rate * NOISE_WINDOW_S))
    if signal.size <= n_fft:
        return signal
    reference = (signal if noise is None else noise)[: int(MAX_NOISE_S * rate)]
    denoiser = SpectralDenoiser(reference, rate, n_fft, NOISE_PROP_DECREASE)
    chunk = int(NOISE_CHUNK_S * rate)
    out = np.empty_like(signal)
    for start in range(0, signal.size, chunk):
        end = min(signal.size, start + chunk)
        low, high = max(0, start - n_fft), min(signal.size, end + n_fft)
        out[start:end] = denoiser.apply(signal[low:high])[start - low : end - low]
    return out


def normalise_loudness(signal: F32, rate: int) -> tuple[F32, float | None, float]:
    """Gain to ``TARGET_LUFS`` with true peaks limited to the ceiling, repeated while the limiter costs
    loudness; returns the signal, its loudness and its (linear) true peak."""
    out, loudness = signal, integrated_loudness(signal[np.newaxis, :], rate)
    peak: float | None = None
    for _ in range(_LOUDNESS_ROUNDS):
        if loudness is None or abs(loudness - TARGET_LUFS) <= _LOUDNESS_TOLERANCE_LU:
            break
        out, peak = limit_true_peak(out * np.float32(10 ** ((TARGET_LUFS - loudness) / 20)), rate)
        loudness = integrated_loudness(out[np.newaxis, :], rate)
    return out, loudness, true_peak(out[np.newaxis, :]) if peak is None else peak


def limit_true_peak(signal: F32, rate: int) -> tuple[F32, float]:
    """Bring every (4x oversampled) peak under ``PEAK_CEILING_DBTP`` with a smooth look-ahead gain;
    returns the signal and its (linear) true peak.

    The required gain is min-filtered over the look-ahead window and then averaged over a window no
    wider, so at every peak the applied gain is at most what that peak needs.
    """
    ceiling = 10 ** ((PEAK_CEILING_DBTP - LIMITER_MARGIN_DB) / 20)
    envelope = peak_envelope(signal)
    peak = float(np.max(envelope, initial=0.0))
    if peak <= ceiling:
        return signal, peak
    need = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12))
    half = max(1, int(rate * LIMITER_WINDOW_S))
    gain = uniform_filter1d(minimum_filter1d(need, size=2 * half + 1), size=2 * half + 1)
    limited = np.asarray(signal * gain, dtype=np.float32)
    # The gain moves, so the product's inter-sample peaks can still graze the ceiling: a last plain scale.
    peak = true_peak(limited[np.newaxis, :])
    if peak > ceiling:
        return limited * np.float32(ceiling / peak), ceiling
    return limited, peak


def pauses(mono: F32, rate: int, speech: Speech) -> F32 | None:
    """The non-speech samples of ``mono`` by ``speech`` (the noise to reduce, for ``reduce_noise``), or None when the
    pauses are too short to go by."""
    if speech.frames.size == 0:
        return None
    frame_of = np.minimum((np.arange(mono.size) / (rate * VAD_FRAME_S)).astype(np.intp), speech.frames.size - 1)
    pauses = mono[~speech.frames[frame_of]]
    return pauses if pauses.size >= MIN_PAUSE_S * rate else None
