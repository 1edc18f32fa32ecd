"""A recording judged window by window (issue 56): another speaker put into a sample of the consenting one is
refused with the seconds where it speaks, against the consent's print and with no print at all; the same
speaker's samples are not; one odd partial never refuses; the seconds named are the recording's own, pauses
included; the prints of the partials survive their bytes and give the voiceprint `voiceprint` gives."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from backend.voiceprint import DIMENSIONS, SpeechPrints, Voiceprint, features, speech_prints, voiceprint
from backend.voiceprint.embedding import PARTIAL_BYTES
from backend.voiceprint.windows import (
    REFERENCE_THRESHOLD,
    SELF_THRESHOLD,
    Stretch,
    named,
    second_voice,
    unlike,
)
from tests.unit.voiceprint.conftest import Clip

F32 = npt.NDArray[np.float32]
RATE = 16000


def by_name(clips: list[Clip], name: str) -> F32:
    [clip] = [clip for clip in clips if clip.name == name]
    assert clip.rate == RATE
    return clip.samples


def spliced(base: F32, foreign: F32, at_s: float) -> tuple[F32, tuple[float, float]]:
    """``foreign`` put into ``base`` at ``at_s``, and the seconds it then covers."""
    at = round(at_s * RATE)
    return np.concatenate([base[:at], foreign, base[at:]]), (at / RATE, (at + foreign.size) / RATE)


def printed(samples: F32) -> SpeechPrints:
    prints = speech_prints(samples, RATE)
    assert prints is not None
    return prints


def test_4_s_of_another_speaker_in_the_middle_is_refused_with_its_seconds(clips: list[Clip]) -> None:
    consent = voiceprint(by_name(clips, "2414-128291-0005"), RATE)  # a man, 10.7 s
    assert consent is not None
    own = by_name(clips, "2414-128291-0007")  # his other utterance, 6.8 s
    stranger = by_name(clips, "1998-15444-0009")[RATE : 5 * RATE]  # 4 s of a woman
    sample, (start, end) = spliced(own, stranger, 3.4)

    [found] = unlike(printed(sample), consent)
    assert found.start_s == pytest.approx(start, abs=1.0)
    assert found.end_s == pytest.approx(end, abs=1.0)
    assert found.score < REFERENCE_THRESHOLD
    # The same judged with no consent: it is not the voice of the rest of the sample.
    [alone] = second_voice(printed(sample))
    assert alone.start_s == pytest.approx(start, abs=1.0)
    assert alone.end_s == pytest.approx(end, abs=1.0)
    assert alone.score < SELF_THRESHOLD
    # His own utterance alone is his, against the consent and on its own.
    assert unlike(printed(own), consent) == []
    assert second_voice(printed(np.concatenate([own, by_name(clips, "2414-128291-0005")]))) == []


def test_the_consenting_voice_first_and_another_after_is_refused_from_where_the_other_begins(
    clips: list[Clip],
) -> None:
    consent = voiceprint(np.concatenate([by_name(clips, "367-130732-0007"), by_name(clips, "367-130732-0008")]), RATE)
    assert consent is not None
    head = by_name(clips, "367-130732-0008")[: 4 * RATE]
    tail = np.concatenate([by_name(clips, "533-1066-0008"), by_name(clips, "533-1066-0009")])
    sample = np.concatenate([head, tail])

    [found] = unlike(printed(sample), consent)

    assert found.start_s == pytest.approx(4.0, abs=1.0)
    assert found.end_s == pytest.approx(sample.size / RATE, abs=1.0)
    assert named([found]).startswith(f"the speech from {found.start_s:.1f} s to ")


def test_the_seconds_named_are_the_recordings_own_with_its_pauses(clips: list[Clip]) -> None:
    own = by_name(clips, "2414-128291-0007")
    stranger = by_name(clips, "1998-15444-0009")[RATE : 5 * RATE]
    pause = np.zeros(3 * RATE, dtype=np.float32)  # cut by the VAD, put back in the seconds
    sample = np.concatenate([own, pause, stranger])
    prints = printed(sample)

    [found] = second_voice(prints)

    # Where the pause was cut, one partial holds the end of one voice and the start of the other: the other
    # voice is named from within a second of the pause (the partial that spans it goes to either voice), to the
    # end of the recording.
    assert own.size / RATE - 1.0 <= found.start_s <= (own.size + pause.size) / RATE + 1.0
    assert found.end_s == pytest.approx(sample.size / RATE, abs=0.5)
    assert prints.spans[0, 0] >= 0
    assert prints.spans[-1, 1] <= sample.size / RATE
    assert np.all(np.diff(prints.spans, axis=0) >= 0)
    assert np.allclose(prints.spans[1:, 0], prints.spans[:-1, 1]), "the partials tile the speech"
    assert np.max(np.diff(prints.spans, axis=1)) > 3.0, "one partial stands for the pause"


def test_the_prints_carry_the_voiceprint_and_the_partials_survive_their_bytes(clips: list[Clip]) -> None:
    samples = by_name(clips, "1998-15444-0006")
    prints = printed(samples)
    made = voiceprint(samples, RATE)

    assert made is not None
    assert prints.voiceprint() == made
    data = prints.to_bytes()
    assert len(data) == len(prints) * PARTIAL_BYTES
    again = SpeechPrints.from_bytes(data)
    assert np.allclose(again.spans, prints.spans, atol=1e-5)
    assert np.max(np.abs(again.vectors - prints.vectors)) < 1e-3
    # Stored, they are the partials alone: their mean print stands for the whole one (a set's rest of samples).
    assert again.whole is None
    assert made.similarity(again.voiceprint() or made) > 0.9
    shifted = prints.shifted(2.5)
    assert np.allclose(shifted.spans, prints.spans + 2.5)
    with pytest.raises(ValueError, match="whole partials"):
        SpeechPrints.from_bytes(data[:-2])
    with pytest.raises(ValueError, match="whole partials"):
        SpeechPrints.from_bytes(b"")


def axis(index: int) -> F32:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[index] = 1.0
    return vector


def made_up(voices: str) -> SpeechPrints:
    """Partials one a second, each of voice "a" (one axis) or "b" (cosine -0.6 with it: ECAPA-TDNN's strangers score
    about 0.1, and the window thresholds lie under a third, so one "a" and two "b" must score under them)."""
    other = -0.6 * axis(0) + 0.8 * axis(1)
    vectors = [axis(0) if voice == "a" else other for voice in voices]
    return SpeechPrints(vectors, [(second, second + 1.0) for second in range(len(voices))])


def test_one_odd_partial_never_refuses_and_two_in_a_window_do() -> None:
    reference = Voiceprint(axis(0))

    assert unlike(made_up("aaaabaaaaa"), reference) == []
    assert second_voice(made_up("aaaabaaaaa")) == []
    # A window of one "a" and two "b": mean -0.2 / 3, median -0.6, scored -0.0667.
    assert unlike(made_up("aaaabbaaaa"), reference) == [Stretch(start_s=4.0, end_s=6.0, score=-0.0667)]
    assert second_voice(made_up("aaaabbaaaa")) == [Stretch(start_s=4.0, end_s=6.0, score=-0.0667)]
    assert unlike(made_up("aaaaaaaaaa"), reference) == []


def test_every_stretch_is_named_and_too_little_speech_is_left_to_the_whole_print() -> None:
    reference = Voiceprint(axis(0))

    found = unlike(made_up("bbaaaaaabbb"), reference)

    assert found == [Stretch(start_s=0.0, end_s=2.0, score=-0.0667), Stretch(start_s=8.0, end_s=11.0, score=-0.6)]
    assert named(found) == "the speech from 0.0 s to 2.0 s and from 8.0 s to 11.0 s are"
    assert unlike(made_up("bb"), reference) == []
    # Six partials cannot hold a window and a rest of three beside it that shares none of its speech.
    assert second_voice(made_up("aaabbb")) == []


def test_the_kept_speech_maps_back_to_the_recordings_seconds() -> None:
    kept_windows = np.array([0, 1, 5, 6])

    window = features.VAD_WINDOW
    places = np.array([0, window + 10, 2 * window, 4 * window])  # the last one: the end of the speech

    seconds = features.recording_seconds(places, kept_windows)

    assert seconds.tolist() == pytest.approx([0.0, (window + 10) / RATE, 5 * window / RATE, 7 * window / RATE])
