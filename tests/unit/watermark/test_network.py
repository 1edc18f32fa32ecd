"""Perth-Net without torch gives the library's numbers: each convolution stack on a fixed input, and whole
clips' scores, marked and not, against figures resemble-perth 1.0.1 itself gave (torch 2.13.0 on the CPU,
2026-11-26; docs/consent.md describes the comparison). The tests run without torch: the figures are constants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from backend.watermark import THRESHOLD, detect, mark, perth
from backend.watermark.api import STRENGTH, UNVOICED_STRENGTH
from backend.watermark.network import DECODERS, ENCODER, shared_network

CLIPS = Path(__file__).resolve().parents[2] / "clips" / "librispeech"
#: Each stack's output on `np.random.default_rng(7).random((1, 128, 40), dtype=np.float32)` by the library's
#: modules: the sum of every value, and output channels 0 and 1 at frame 20.
STACKS = {
    "encoder.layers": (-5.906146910507232, -0.015527676790952682, -0.011069230735301971),
    "decoder.slow_layers": (0.6995190717279911, -0.044737085700035095, 0.06199008971452713),
    "decoder.normal_layers": (6.028148617595434, 0.08404715359210968, 0.010831998661160469),
    "decoder.fast_layers": (-1.6868749558925629, -0.07921402156352997, 0.03703996166586876),
}
#: The library's decoder output (before it clips to [0, 1]) for a committed clip at 16 kHz, and for the same
#: clip marked at the library's own strength by `backend.watermark.perth.added` (the library's own mark of it
#: scores within 3e-6 of that).
CLIP_SCORES = {
    "1688-142285-0005": (0.3587050139904022, 1.0006769895553589),
    "1688-142285-0008": (0.24454106390476227, 1.0003660917282104),
}
#: Scores agree with the library's to float rounding: 2.1e-5 at most on 540 comparisons.
TOLERANCE = 1e-4


def clip(name: str) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(CLIPS / name.split("-", maxsplit=1)[0] / f"{name}.flac", dtype="float32")
    return samples, rate


@pytest.mark.parametrize("prefix", [ENCODER, *DECODERS])
def test_each_stack_gives_the_librarys_output(prefix: str) -> None:
    network = shared_network()
    stack = network.encoder if prefix == ENCODER else network.decoders[DECODERS.index(prefix)]
    features = np.random.default_rng(7).random((1, 128, 40), dtype=np.float32)[0]

    out = stack(features)

    total, first, second = STACKS[prefix]
    assert out.shape == ((128 if prefix == ENCODER else 2), 40)
    assert float(out.astype(np.float64).sum()) == pytest.approx(total, abs=1e-3)
    assert out[:2, 20] == pytest.approx([first, second], abs=1e-5)


def test_long_input_runs_in_blocks_with_the_same_frames_as_one_pass() -> None:
    stack = shared_network().decoders[1]
    frames = 2 * perth.BLOCK + 321
    features = np.random.default_rng(3).random((128, frames), dtype=np.float32)

    blocked = perth.run_stack(stack, features)

    assert blocked.shape == (2, frames)
    assert np.abs(blocked - stack(features)).max() < 1e-4


@pytest.mark.parametrize("name", sorted(CLIP_SCORES))
def test_a_clip_and_its_marked_copy_score_as_the_library_scores_them(name: str) -> None:
    samples, rate = clip(name)
    network = shared_network()
    unmarked, marked = CLIP_SCORES[name]
    change = perth.added(network.encoder, samples, rate)

    assert perth.score(network.decoders, samples, rate) == pytest.approx(unmarked, abs=TOLERANCE)
    at_the_librarys_strength = samples.astype(np.float64)
    at_the_librarys_strength[: change.size] += change
    score = perth.score(network.decoders, at_the_librarys_strength.astype(np.float32), rate)
    assert score == pytest.approx(marked, abs=TOLERANCE)
    # What voicegate adds is the library's mark made STRENGTH times as strong, UNVOICED_STRENGTH in unvoiced frames.
    copy = mark(samples, rate)
    stronger = perth.added(network.encoder, samples, rate, UNVOICED_STRENGTH / STRENGTH)
    assert np.abs((copy - samples)[: stronger.size] - STRENGTH * stronger).max() < 1e-6
    assert np.abs(STRENGTH * change).sum() < np.abs(copy - samples).sum() < np.abs(UNVOICED_STRENGTH * change).sum()
    assert detect(copy, rate).present
    assert not detect(samples, rate).present


def test_unvoiced_frames_carry_the_mark_made_stronger_and_voiced_ones_as_the_library_makes_it() -> None:
    encoder = shared_network().encoder
    rate = perth.RATE
    seconds = np.arange(rate) / rate
    # A vowel-like buzz (harmonics of 140 Hz): every frame voiced. White noise: every frame unvoiced.
    harmonics = np.arange(1, 15)[:, None]
    buzz = (np.sin(2 * np.pi * 140 * harmonics * seconds) / harmonics).sum(axis=0).astype(np.float32) * 0.1
    hiss = np.random.default_rng(3).normal(0, 0.05, rate).astype(np.float32)
    padded = perth._padded

    assert (perth.voicing(padded(buzz))[5:-5] >= perth.UNVOICED).all()
    assert (perth.voicing(padded(hiss)) < perth.UNVOICED).all()
    gain = UNVOICED_STRENGTH / STRENGTH
    voiced = perth.added(encoder, buzz, rate, gain)[8000:-8000]
    assert np.array_equal(voiced, perth.added(encoder, buzz, rate)[8000:-8000])
    assert np.allclose(perth.added(encoder, hiss, rate, gain), gain * perth.added(encoder, hiss, rate), atol=1e-9)


def test_no_committed_natural_clip_carries_the_mark_and_each_marked_copy_does() -> None:
    paths = sorted(CLIPS.glob("*/*.flac"))
    assert len(paths) == 12
    for path in paths:
        samples, rate = soundfile.read(path, dtype="float32")
        assert detect(samples, rate).score < THRESHOLD, path.name
        assert detect(mark(samples, rate), rate).score > 0.95, path.name


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100, 48000])
def test_marking_keeps_the_length_and_everything_above_2_khz_and_stays_under_the_speech(rate: int) -> None:
    samples, native = clip("2414-128291-0005")
    at_rate = perth.to_rate(samples, native, rate)

    marked = mark(at_rate, rate)

    assert marked.shape == at_rate.shape
    added = marked - at_rate
    # The mark's level below the speech: 12.9 dB (median) on LibriSpeech (docs/consent.md).
    level_db = 10 * np.log10(np.sum(added**2) / np.sum(at_rate.astype(np.float64) ** 2))
    assert level_db < -9.0
    spectrum = np.abs(np.fft.rfft(added)) ** 2
    below = spectrum[: int(2100 * added.size / rate)].sum() / spectrum.sum()
    assert below > 0.999
    assert detect(marked, rate).present


def test_silence_and_audio_shorter_than_a_frame_are_left_as_they_are() -> None:
    silence = np.zeros(48000)
    assert np.array_equal(mark(silence, 48000), silence)
    assert detect(silence, 48000) == detect(silence[:10], 48000)
    assert detect(silence, 48000).score == 0.0
    blip = np.random.default_rng(1).uniform(-0.1, 0.1, 500)
    assert mark(blip, 24000).shape == (500,)


def test_what_is_not_mono_float_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="only mono"):
        mark(np.zeros((2, 100)), 16000)
    with pytest.raises(ValueError, match="finite"):
        detect(np.array([0.0, np.nan]), 16000)
    with pytest.raises(ValueError, match="positive"):
        detect(np.zeros(100), 0)
    with pytest.raises(ValueError, match=r"channels first, \(c, n\) with c at most 2, not \(4800, 2\)"):
        detect(np.zeros((4800, 2)), 48000)
    assert detect(np.zeros((2, 4800)), 48000).score == 0.0


def test_resampling_is_scipys_and_keeps_only_the_filters_of_common_rates() -> None:
    """`to_rate` makes scipy's `resample_poly` output bit for bit with the filter it keeps per ratio, and keeps none
    for an odd rate (a detector reading every rate a client sends would otherwise hold megabytes per rate)."""
    rng = np.random.default_rng(3)
    perth._low_pass.cache_clear()
    for rate, target in [(24000, 32000), (32000, 24000), (44100, 32000), (16000, 32000), (44101, 32000)]:
        for dtype in (np.float32, np.float64):
            samples = rng.standard_normal(9000).astype(dtype)
            common = np.gcd(rate, target)
            expected = np.asarray(resample_poly(samples, target // common, rate // common), dtype=np.float32)
            assert np.array_equal(perth.to_rate(samples, rate, target), expected), (rate, target, dtype)
    # 24 kHz and 32 kHz share one ratio's filter; 44,101 Hz's (882,021 taps) is not kept.
    assert perth._low_pass.cache_info().currsize == 3
