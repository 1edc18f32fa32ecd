"""Stationary spectral gating: noise reduction by per-frequency thresholds learnt from the noise.

The algorithm of noisereduce's stationary mode (Sainburg, Thielk and Gentner 2020), in a few lines over numpy
and scipy (the noisereduce package would bring matplotlib, pillow, fontTools and joblib with it). The noise's
short-time spectrum in dB gives each frequency a threshold, its mean plus ``THRESHOLD_STD`` standard
deviations; a time-frequency bin of the signal above its frequency's threshold is kept, one below is turned
down; the keep/turn-down mask is smoothed over ``MASK_SMOOTH_HZ`` and ``MASK_SMOOTH_S`` so its edges do not
ring, and the signal is resynthesised from the masked spectrum. The STFT is Hann-windowed, ``n_fft`` long with
a hop of ``n_fft / 4``: scipy's `stft` and `istft` (their defaults: frames centred on zero padding, the
spectrum scaled by the window's sum, overlap-add divided by the squared window's), computed here over all
frames at once, and the mask smoothed by its kernel's two triangles in turn (the kernel is their outer
product), which give the same as scipy's, but for float rounding, at a fraction of the cost. The signal's own
spectrum, mask and resynthesis are float32 (the noise's statistics float64): half the work of float64, and its
rounding (1e-7 of full scale) is far under a 24-bit sample's step.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy.ndimage import correlate1d

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
C64 = npt.NDArray[np.complex64]

#: A bin is speech when it is this many standard deviations above its frequency's mean noise level.
THRESHOLD_STD: Final = 1.5
#: The mask is smoothed over this much of the spectrum and this long, with a triangular kernel.
MASK_SMOOTH_HZ: Final = 500.0
MASK_SMOOTH_S: Final = 0.05
#: Levels are floored this far under each frequency's loudest bin, so silence is no -inf in the statistics.
DYNAMIC_RANGE_DB: Final = 80.0


class SpectralDenoiser:
    """Thresholds learnt once from ``noise``, applied to any number of signals at the same rate."""

    def __init__(self, noise: F32, rate: int, n_fft: int, prop_decrease: float) -> None:
        if n_fft % 4:
            raise ValueError(f"n_fft must be a multiple of 4, not {n_fft}")
        self._n_fft = n_fft
        self._hop = n_fft // 4
        self._prop_decrease = prop_decrease
        # Imported here: scipy.signal's import costs over a second of CPU, which every process start would pay.
        from scipy.signal import get_window  # noqa: PLC0415

        window = np.asarray(get_window("hann", n_fft), dtype=np.float64)
        # scipy's `stft` scales the spectrum by 1 / the window's sum, and `istft` undoes it.
        self._analysis = (window / window.sum()).astype(np.float32)
        self._synthesis = (window * window.sum()).astype(np.float32)
        self._norm = (window**2).reshape(4, self._hop)
        noise_db = _level_db(self._stft(noise.astype(np.float32))).astype(np.float64)
        threshold = np.mean(noise_db, axis=0) + THRESHOLD_STD * np.std(noise_db, axis=0)
        self._threshold = threshold.astype(np.float32)
        bins = max(1, int(MASK_SMOOTH_HZ / (rate / (n_fft / 2))))
        frames = max(1, int(MASK_SMOOTH_S * rate / self._hop))
        # The smoothing kernel is the outer product of these two, normalised to sum to 1.
        self._smooth_bins = (_triangle(bins) / np.sum(_triangle(bins))).astype(np.float32)
        self._smooth_frames = (_triangle(frames) / np.sum(_triangle(frames))).astype(np.float32)

    def apply(self, signal: F32) -> F32:
        """``signal`` with the bins under the thresholds turned down by ``prop_decrease`` of their level."""
        # Zeros either side, one STFT window each, so the first and last samples get full frames.
        padded = np.pad(signal.astype(np.float32), self._n_fft)
        spectrum = self._stft(padded)
        keep = _level_db(spectrum) > self._threshold
        mask = np.where(keep, np.float32(1.0), np.float32(1.0 - self._prop_decrease))
        # Zeros around the mask, as a convolution the same size as its input has them.
        mask = correlate1d(mask, self._smooth_frames, axis=0, mode="constant")
        mask = correlate1d(mask, self._smooth_bins, axis=1, mode="constant")
        spectrum *= mask
        resynthesised = self._istft(spectrum)
        out = np.zeros(padded.size, dtype=np.float32)
        out[: min(out.size, resynthesised.size)] = resynthesised[: out.size]
        return np.asarray(out[self._n_fft : self._n_fft + signal.size], dtype=np.float32)

    def _stft(self, signal: F32) -> C64:
        """(frames, bins): frames centred on the signal's samples every hop, the first at 0 (half a window of
        zeros either side), scaled by the window's sum; the last frame is the last that fits."""
        padded = np.pad(signal, self._n_fft // 2)
        frames = np.lib.stride_tricks.sliding_window_view(padded, self._n_fft)[:: self._hop]
        return np.asarray(scipy.fft.rfft(frames * self._analysis, axis=1, workers=1))

    def _istft(self, spectrum: C64) -> F32:
        """The inverse of `_stft`: each frame's inverse FFT, windowed, overlap-added (four hops to a frame) and
        divided by the squared window overlap-added alike, the half windows of padding cut."""
        count, hop = spectrum.shape[0], self._hop
        frames = scipy.fft.irfft(spectrum, n=self._n_fft, axis=1, workers=1)
        frames *= self._synthesis
        total = np.zeros((count + 3, hop), dtype=np.float32)
        norm = np.zeros((count + 3, hop))
        for part in range(4):
            total[part : part + count] += frames[:, part * hop : (part + 1) * hop]
            norm[part : part + count] += self._norm[part]
        half = self._n_fft // 2
        x, weight = total.ravel()[half:-half], norm.ravel()[half:-half]
        return np.asarray(x / np.where(weight > 1e-10, weight, 1.0), dtype=np.float32)


def _level_db(spectrum: C64) -> F32:
    """Magnitude in dB, floored ``DYNAMIC_RANGE_DB`` under each frequency's loudest bin (spectrum: frames, bins)."""
    level = np.float32(20) * np.log10(np.abs(spectrum) + np.float32(np.finfo(np.float64).eps), dtype=np.float32)
    return np.asarray(
        np.maximum(level, np.max(level, axis=0, keepdims=True) - np.float32(DYNAMIC_RANGE_DB)), dtype=np.float32
    )


def _triangle(half_width: int) -> F64:
    """A triangular window of ``2 * half_width + 1`` points peaking at 1, not reaching 0 at its ends."""
    return 1.0 - np.abs(np.arange(-half_width, half_width + 1)) / (half_width + 1)
