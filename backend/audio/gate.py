"""Stationary spectral gating: noise reduction by per-frequency thresholds learnt from the noise.

The algorithm of noisereduce's stationary mode (Sainburg, Thielk and Gentner 2020), in a few lines over numpy
and scipy (the noisereduce package would bring matplotlib, pillow, fontTools and joblib with it). The noise's
short-time spectrum in dB gives each frequency a threshold, its mean plus ``THRESHOLD_STD`` standard
deviations; a time-frequency bin of the signal above its frequency's threshold is kept, one below is turned
down; the keep/turn-down mask is smoothed over ``MASK_SMOOTH_HZ`` and ``MASK_SMOOTH_S`` so its edges do not
ring, and the signal is resynthesised from the masked spectrum. The STFT is Hann-windowed, ``n_fft`` long with
a hop of ``n_fft / 4``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import fftconvolve, istft, stft

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: A bin is speech when it is this many standard deviations above its frequency's mean noise level.
THRESHOLD_STD: Final = 1.5
#: The mask is smoothed over this much of the spectrum and this long, with a triangular kernel.
MASK_SMOOTH_HZ: Final = 500.0
MASK_SMOOTH_S: Final = 0.05
#: Levels are floored this far under each frequency's loudest bin, so silence is no -inf in the statistics.
DYNAMIC_RANGE_DB: Final = 80.0


class SpectralGate:
    """Thresholds learnt once from ``noise``, applied to any number of signals at the same rate."""

    def __init__(self, noise: F32, rate: int, n_fft: int, prop_decrease: float) -> None:
        self._n_fft = n_fft
        self._hop = n_fft // 4
        self._prop_decrease = prop_decrease
        noise_db = _level_db(self._stft(noise.astype(np.float64)))
        self._threshold = np.mean(noise_db, axis=1) + THRESHOLD_STD * np.std(noise_db, axis=1)
        bins = max(1, int(MASK_SMOOTH_HZ / (rate / (n_fft / 2))))
        frames = max(1, int(MASK_SMOOTH_S * rate / self._hop))
        kernel = np.outer(_triangle(bins), _triangle(frames))
        self._kernel = kernel / np.sum(kernel)

    def apply(self, signal: F32) -> F32:
        """``signal`` with the bins under the thresholds turned down by ``prop_decrease`` of their level."""
        # Zeros either side, one STFT window each, so the first and last samples get full frames.
        padded = np.pad(signal.astype(np.float64), self._n_fft)
        spectrum = self._stft(padded)
        keep = _level_db(spectrum) > self._threshold[:, np.newaxis]
        mask = fftconvolve(keep * self._prop_decrease + (1.0 - self._prop_decrease), self._kernel, mode="same")
        _, resynthesised = istft(
            spectrum * mask, nperseg=self._n_fft, noverlap=self._n_fft - self._hop, nfft=self._n_fft
        )
        out = np.zeros(padded.size)
        out[: min(out.size, resynthesised.size)] = resynthesised[: out.size]
        return np.asarray(out[self._n_fft : self._n_fft + signal.size], dtype=np.float32)

    def _stft(self, signal: F64) -> npt.NDArray[np.complex128]:
        _, _, spectrum = stft(
            signal, nperseg=self._n_fft, noverlap=self._n_fft - self._hop, nfft=self._n_fft, padded=False
        )
        return np.asarray(spectrum, dtype=np.complex128)


def _level_db(spectrum: npt.NDArray[np.complex128]) -> F64:
    """Magnitude in dB, floored ``DYNAMIC_RANGE_DB`` under each frequency's loudest bin."""
    level = 20 * np.log10(np.abs(spectrum) + np.finfo(np.float64).eps)
    return np.asarray(np.maximum(level, np.max(level, axis=-1, keepdims=True) - DYNAMIC_RANGE_DB), dtype=np.float64)


def _triangle(half_width: int) -> F64:
    """A triangular window of ``2 * half_width + 1`` points peaking at 1, not reaching 0 at its ends."""
    return 1.0 - np.abs(np.arange(-half_width, half_width + 1)) / (half_width + 1)
