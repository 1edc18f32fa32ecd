"""The mark is found in speech whose pitch or speed was changed, as sox's `pitch`, `speed` and `tempo` change it
(made by ffmpeg here), up to two semitones either way: the detector reads the audio at its own pitch first, then
looks at warps of it. Before, a one-semitone shift hid the mark (a marked clip scored under 0.2 after it). The
same edits of unmarked speech are not taken for marked."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from backend.audio.decode import decode_audio
from backend.watermark import Detection, detect, mark, perth
from backend.watermark.api import WARP_THRESHOLD, WARPS
from devkit.audio_edits import pitch_shifted, sped

CLIPS = Path(__file__).resolve().parents[2] / "clips" / "librispeech"
#: Two speakers the search was not tuned on (a woman, a man).
NAMES = ("533-1066-0008", "2414-128291-0007")


def clip(name: str) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(CLIPS / name.split("-", maxsplit=1)[0] / f"{name}.flac", dtype="float64")
    return samples, rate


def read(wav: bytes) -> Detection:
    decoded = decode_audio(wav)
    return detect(decoded.samples, decoded.sample_rate)


#: Each edit, and the warp in cents that undoes it.
EDITS: dict[str, tuple[Callable[[np.ndarray, int], bytes], int]] = {
    "pitch +1 st": (lambda x, r: pitch_shifted(x, r, 100), 100),
    "pitch -1 st": (lambda x, r: pitch_shifted(x, r, -100), -100),
    "pitch +2 st": (lambda x, r: pitch_shifted(x, r, 200), 200),
    "pitch -2 st": (lambda x, r: pitch_shifted(x, r, -200), -200),
    "speed 1.05": (lambda x, r: sped(x, r, 1.05), round(1200 * math.log2(1.05))),
    "speed 0.9": (lambda x, r: sped(x, r, 0.9), round(1200 * math.log2(0.9))),
}
#: A mark shifted by c also reads about this many cents nearer its own pitch (`backend.watermark.api.CANDIDATES`):
#: after two semitones the search may read it there, as strongly.
ALIAS_CENTS = 240


@pytest.mark.parametrize("edit", EDITS)
@pytest.mark.parametrize("name", NAMES)
def test_an_edit_of_pitch_or_speed_keeps_marked_speech_marked_and_unmarked_speech_unmarked(
    name: str, edit: str
) -> None:
    samples, rate = clip(name)
    make, undo = EDITS[edit]

    marked = read(make(mark(samples, rate), rate))
    unmarked = read(make(samples, rate))

    assert marked.present, marked
    assert marked.score >= WARP_THRESHOLD
    alias = undo - ALIAS_CENTS if undo > 0 else undo + ALIAS_CENTS
    assert min(abs(marked.cents - undo), abs(marked.cents - alias)) <= 45, "read back at the warp that undoes the edit"
    assert not unmarked.present, unmarked


def test_marked_speech_as_it_was_made_is_found_at_its_own_pitch() -> None:
    samples, rate = clip(NAMES[0])

    found = detect(mark(samples, rate), rate)

    assert (found.present, found.cents) == (True, 0)


def test_a_warp_resamples_by_the_ratio_of_its_cents() -> None:
    signal = np.random.default_rng(1).standard_normal(32000).astype(np.float32)

    assert perth.warped(signal, 0) is signal
    for cents in WARPS:
        assert perth.warped(signal, cents).size == pytest.approx(32000 * 2 ** (cents / 1200), abs=2)


def test_silence_reads_as_unmarked_at_every_warp() -> None:
    assert detect(np.zeros(48000), 16000) == Detection(present=False, score=0.0)


def test_a_warp_resamples_as_scipy_designs_its_filter() -> None:
    signal = np.random.default_rng(2).standard_normal(16000).astype(np.float32)
    ratio, _ = perth._warp_filter(60)

    expected = resample_poly(signal, ratio.numerator, ratio.denominator)

    assert np.abs(perth.warped(signal, 60) - expected).max() < 1e-5
