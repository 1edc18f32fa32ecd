"""A reading put in a noisy room, for the tests of the consent check (as bench/consent.py makes them): room before
and after the speech, and white noise or the babble of six talkers under all of it at a speech-to-noise ratio.

The babble is the LibriSpeech clips kept with the tests (tests/clips, CC BY 4.0: THIRD_PARTY_NOTICES.md), one talker
per speaker folder, each at the same level, so it holds six voices at once."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import soundfile

from backend.audio.measure import detect_speech, resample

CLIPS = Path(__file__).resolve().parent / "clips" / "librispeech"
RATE = 16000
#: Room before and after the reading, as a person starts and stops a recording.
ROOM_S = 1.0
Noise = Literal["white", "babble"]


@functools.cache
def talkers() -> tuple[npt.NDArray[np.float64], ...]:
    """Each speaker's clips end to end, at 16 kHz."""
    out = []
    for folder in sorted(path for path in CLIPS.iterdir() if path.is_dir()):
        parts = [soundfile.read(clip, dtype="float32") for clip in sorted(folder.glob("*.flac"))]
        out.append(np.concatenate([resample(samples, rate, RATE).astype(np.float64) for samples, rate in parts]))
    return tuple(out)


def noise(kind: Noise, size: int, seed: int) -> npt.NDArray[np.float64]:
    """``size`` samples of white noise or six-talker babble, at unit RMS."""
    rng = np.random.default_rng(seed)
    if kind == "white":
        made = rng.standard_normal(size)
    else:
        made = np.zeros(size)
        for talker in talkers():
            start = int(rng.integers(0, max(1, talker.size - size)))
            part = np.resize(talker[start : start + size], size)
            made += part / np.sqrt(np.mean(np.square(part)))
    return np.asarray(made / np.sqrt(np.mean(np.square(made))), dtype=np.float64)


def active_level(speech: npt.NDArray[np.float32]) -> float:
    """The RMS of ``speech`` (16 kHz) over its VAD frames, or over all of it when none is speech."""
    found = detect_speech(np.asarray(speech, dtype=np.float32), RATE)
    power = found.power[found.frames] if np.any(found.frames) else found.power
    return float(np.sqrt(np.mean(power)))


def spliced(parts: list[npt.NDArray[np.float32]], gaps_s: list[float]) -> npt.NDArray[np.float32]:
    """``parts`` (16 kHz) end to end, ``gaps_s[i]`` of silence after each, every part brought to the first's
    active level: pieces of different recordings read as one person reading at one level. (Spliced as they come,
    a sentence 40 dB under its digits was all but silence to the VAD, and drowned under babble set by the
    digits.)"""
    level = active_level(parts[0])
    out = []
    for part, gap in zip(parts, gaps_s, strict=True):
        out += [
            np.asarray(part * (level / active_level(part)), dtype=np.float32),
            np.zeros(int(gap * RATE), np.float32),
        ]
    return np.concatenate(out)


def in_room(
    speech: npt.NDArray[np.float32], rate: int, kind: Noise, snr_db: float, seed: int = 0
) -> npt.NDArray[np.float32]:
    """``speech`` at 16 kHz with ``ROOM_S`` before and after it and ``kind`` of noise under it all, ``snr_db`` under
    the speech's active level (its VAD frames); peaks at half of full scale."""
    at_16k = resample(np.asarray(speech, dtype=np.float32), rate, RATE)
    level = active_level(at_16k)
    room = np.zeros(int(ROOM_S * RATE))
    recording = np.concatenate([room, at_16k.astype(np.float64), room])
    recording += noise(kind, recording.size, seed) * level / 10 ** (snr_db / 20)
    return np.asarray(recording / np.max(np.abs(recording)) * 0.5, dtype=np.float32)
