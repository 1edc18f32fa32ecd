"""What the warp search must not take for a mark, and what it must still find. Natural speech in a reverberant
room reads as marked at one warp (a room's decaying tail, over a narrow span of pitch): the detector looks at a
found warp again 30 cents to either side, where a real mark still reads whole. And the search reads loud excerpts,
so that espeak-ng's speech (its middle often a pause) slowed or shifted is still found."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from backend.audio.decode import decode_audio
from backend.watermark import Detection, detect, mark
from backend.watermark.api import WARP_THRESHOLD
from devkit.audio_corpus import encode
from devkit.audio_edits import pitch_shifted, reverberant, sped
from devkit.speech_maker import speak

CLIPS = Path(__file__).resolve().parents[2] / "clips" / "librispeech"
#: Clips that a search without the reading either side took for marked once in a reverberant room (at -60
#: cents, 0.97 and 0.98), both unmarked; and two that the search over loud excerpts took for marked there (at -60
#: cents, 0.98 and 1.0) until the look 30 cents to a side had to reach `SPAN_FLOOR`.
ROOM_CLIPS = ("1688-142285-0005", "367-130732-0007", "2414-128291-0005", "2414-128291-0007")
#: espeak-ng's sentences (as the benchmark makes them: 22.05 kHz, pitch 30 + 8 n) whose marks a floor of 3.5 and
#: two warps read in full missed: the sixth after speed 0.95, the first and the sixth after a semitone up and
#: MP3 at 32 kbit/s.
ESPEAK = {
    0: "Please confirm your appointment for Tuesday at noon, and bring the forms with you.",
    6: "Our new opening hours start next Monday, from eight in the morning until six.",
}
ESPEAK_RATE = 22050


#: The rate the clips are brought to, as the benchmark does: a provider's render's, where the room is made.
RATE = 44100


def clip(name: str) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(CLIPS / name.split("-", maxsplit=1)[0] / f"{name}.flac", dtype="float64")
    return resample_poly(samples, RATE // 100, rate // 100), RATE


def read(data: bytes) -> Detection:
    decoded = decode_audio(data)
    return detect(decoded.samples, decoded.sample_rate)


@pytest.mark.parametrize("name", ROOM_CLIPS)
def test_natural_speech_in_a_reverberant_room_is_not_taken_for_marked(name: str) -> None:
    samples, rate = clip(name)

    found = detect(reverberant(samples, rate), rate)

    assert not found.present, found


@pytest.mark.parametrize("name", ROOM_CLIPS)
def test_marked_speech_in_the_same_room_is_found(name: str) -> None:
    samples, rate = clip(name)

    found = detect(reverberant(mark(samples, rate), rate), rate)

    assert (found.present, found.cents) == (True, 0), found


@pytest.mark.parametrize("name", ROOM_CLIPS[::2])
def test_marked_speech_in_the_room_then_a_semitone_up_is_found_at_a_warp(name: str) -> None:
    samples, rate = clip(name)

    found = read(pitch_shifted(reverberant(mark(samples, rate), rate), rate, 100))

    assert found.present, found
    assert found.cents > 0
    assert found.score >= WARP_THRESHOLD


def test_espeak_ng_slowed_to_095_is_found() -> None:
    speech = speak(ESPEAK[6], ESPEAK_RATE, pitch=30 + 8 * 6).astype(np.float64)

    marked = read(sped(mark(speech, ESPEAK_RATE), ESPEAK_RATE, 0.95))
    unmarked = read(sped(speech, ESPEAK_RATE, 0.95))

    assert marked.present, marked
    assert abs(marked.cents - 1200 * math.log2(0.95)) <= 15, "read back within 15 cents of the edit's -89"
    assert not unmarked.present, unmarked


@pytest.mark.parametrize("number", ESPEAK)
def test_espeak_ng_a_semitone_up_then_mp3_32k_is_found(number: int) -> None:
    speech = speak(ESPEAK[number], ESPEAK_RATE, pitch=30 + 8 * number).astype(np.float64)

    def edited(signal: np.ndarray) -> bytes:
        shifted = decode_audio(pitch_shifted(signal, ESPEAK_RATE, 100)).samples.mean(axis=0)
        return encode(shifted.astype(np.float32), ESPEAK_RATE, "mp3", "libmp3lame", bit_rate=32000)

    marked = read(edited(mark(speech, ESPEAK_RATE)))
    unmarked = read(edited(speech))

    assert marked.present, marked
    assert abs(marked.cents - 100) <= 15, "read back within 15 cents of the semitone"
    assert not unmarked.present, unmarked
