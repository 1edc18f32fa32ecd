"""Real speech for the voiceprint tests: the LibriSpeech clips kept in tests/clips/librispeech (CC BY 4.0,
attributed in THIRD_PARTY_NOTICES.md), two utterances of each of six speakers, and their voiceprints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from backend.voiceprint import Voiceprint, voiceprint

CLIPS = Path(__file__).resolve().parents[2] / "clips" / "librispeech"


@dataclass(frozen=True)
class Clip:
    """One utterance: LibriSpeech's name for it (speaker-chapter-utterance), its speaker, its samples."""

    name: str
    speaker: str
    samples: npt.NDArray[np.float32]
    rate: int


def read_clips() -> list[Clip]:
    """Every clip, sorted by name."""
    found = []
    for path in sorted(CLIPS.glob("*/*.flac")):
        samples, rate = soundfile.read(path, dtype="float32")
        found.append(Clip(path.stem, path.parent.name, samples, rate))
    return found


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    """The clips (12: two of each of 6 speakers)."""
    found = read_clips()
    assert len(found) == 12
    assert len({clip.speaker for clip in found}) == 6
    return found


@pytest.fixture(scope="module")
def prints(clips: list[Clip]) -> dict[str, Voiceprint]:
    """Each clip's voiceprint, by the clip's name."""
    made = {clip.name: voiceprint(clip.samples, clip.rate) for clip in clips}
    found = {name: made_print for name, made_print in made.items() if made_print is not None}
    assert found.keys() == made.keys(), "every clip holds seconds of speech"
    return found
