"""The loudness meter and the true-peak envelope against the references they are computed faster than."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest
from scipy.signal import firwin, upfirdn

from backend.audio import measure

F32 = npt.NDArray[np.float32]


def _reference_envelope(signal: F32) -> F32:
    """The 4x oversampled peaks as upfirdn gives them, point by point."""
    oversampled = np.abs(upfirdn(measure._TRUE_PEAK_FILTER, signal, up=measure.TRUE_PEAK_OVERSAMPLING))
    start = measure._TRUE_PEAK_DELAY
    points = oversampled[start : start + signal.size * measure.TRUE_PEAK_OVERSAMPLING]
    return np.asarray(points.reshape(signal.size, measure.TRUE_PEAK_OVERSAMPLING).max(axis=1), dtype=np.float32)


def test_the_true_peak_filter_is_scipys_firwin() -> None:
    # Designed in numpy so that loading the module does not import scipy.signal.
    expected = (firwin(48, 1 / measure.TRUE_PEAK_OVERSAMPLING, window=("kaiser", 6.0)) * 4).astype(np.float32)

    np.testing.assert_array_equal(measure._TRUE_PEAK_FILTER, expected)


@pytest.mark.parametrize(("count", "cutoff", "beta"), [(48, 0.25, 6.0), (801, 1 / 40, 5.0), (61, 1 / 3, 5.0)])
def test_lowpass_taps_are_scipys_firwin_to_float_rounding(count: int, cutoff: float, beta: float) -> None:
    taps = measure._lowpass_taps(count, cutoff, beta=beta)

    np.testing.assert_allclose(taps, firwin(count, cutoff, window=("kaiser", beta)), rtol=1e-12, atol=1e-15)


# Lengths around the block size, and shorter than the filter.
@pytest.mark.parametrize("size", [1, 11, 13, 1000, 65535, 65536, 65537, 200_001])
def test_peak_envelope_is_the_oversampled_peaks(size: int) -> None:
    signal = (np.random.default_rng(size).standard_normal(size) * 0.3).astype(np.float32)

    envelope = measure.peak_envelope(signal)

    assert envelope.shape == signal.shape
    np.testing.assert_allclose(envelope, _reference_envelope(signal), rtol=0, atol=1e-6)


def test_true_peak_finds_an_inter_sample_peak() -> None:
    # A sine at a quarter of the rate sampled 45 degrees off its crests: every sample is 0.707, the wave peaks at 1.
    signal = np.sin(np.pi / 2 * np.arange(4800) + np.pi / 4).astype(np.float32)

    assert float(np.max(np.abs(signal))) == pytest.approx(0.7071, abs=1e-3)
    assert measure.true_peak(signal[np.newaxis, :]) == pytest.approx(1.0, abs=0.02)


# Lengths just over one block, ones whose last block runs past the end, and long ones; mono to five channels.
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2, 5])
@pytest.mark.parametrize("seconds", [0.41, 0.46, 0.55, 3.37, 12.0])
def test_loudness_is_pyloudnorms(rate: int, channels: int, seconds: float) -> None:
    rng = np.random.default_rng(rate + channels)
    signal = (rng.standard_normal((channels, int(rate * seconds))) * rng.uniform(0.01, 0.5)).astype(np.float32)
    signal[:, : signal.shape[1] // 3] *= 1e-3  # quiet blocks, for the relative gate to drop

    expected = pyloudnorm.Meter(rate).integrated_loudness(signal.T.astype(np.float64))

    assert measure.integrated_loudness(signal, rate) == pytest.approx(expected, abs=1e-9)


def test_loudness_of_silence_and_of_too_little_is_none() -> None:
    assert measure.integrated_loudness(np.zeros((1, 48000), dtype=np.float32), 48000) is None
    assert measure.integrated_loudness(np.ones((1, 19200), dtype=np.float32), 48000) is None
