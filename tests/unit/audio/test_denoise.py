"""The spectral denoiser (spectral gating): noise under its learnt thresholds turned down by the proportion asked,
speech kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.audio.denoise import SpectralDenoiser
from devkit.audio_corpus import noise, rms, speech_mono

PROP_DECREASE = 0.8


def gain_db(out: np.ndarray, before: np.ndarray) -> float:
    return 20 * math.log10(rms(out) / rms(before))


def n_fft_for(rate: int) -> int:
    return 1 << round(math.log2(rate * 0.025))


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_noise_alone_is_turned_down_by_the_proportion(rate: int) -> None:
    denoiser = SpectralDenoiser(noise(2.0, 0.01, rate, seed=3), rate, n_fft_for(rate), PROP_DECREASE)
    hiss = noise(3.0, 0.01, rate, seed=4)[:-7]  # not a whole number of hops: every sample still comes out

    out = denoiser.apply(hiss)

    assert (out.dtype, out.shape) == (np.float32, hiss.shape)
    # Under the thresholds, 20% of the amplitude is left (-14 dB); the few noise bins above them stay.
    assert -14.5 < gain_db(out, hiss) < -12.0


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
def test_speech_over_the_noise_comes_through(rate: int) -> None:
    voice = speech_mono(3.0, rate)
    hiss_rms = rms(voice) / 10 ** (20 / 20)
    denoiser = SpectralDenoiser(noise(2.0, hiss_rms, rate, seed=3), rate, n_fft_for(rate), PROP_DECREASE)

    out = denoiser.apply(voice + noise(voice.size / rate, hiss_rms, rate, seed=4)[: voice.size])

    # 20 dB over the noise, speech keeps its level (the mask only trims its weakest bins).
    assert abs(gain_db(out, voice)) < 1.0
