"""A set of samples: the join a single-reference provider gets (every sample heard, the length it asks
for), the traits measured on speech, and the set's report (totals, spreads, another speaker warned)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.audio.voice_set import JOIN_PAUSE_S, Member, Traits, joined, set_report, voice_traits
from backend.wav import float_to_wav, wav_to_float, with_comment
from devkit.audio_corpus import speech_mono
from devkit.speech_maker import speak

RATE = 24000


def test_a_join_takes_an_equal_share_of_each_sample_and_the_rest_from_the_longer() -> None:
    signals = [np.full(8 * RATE, value) for value in (0.1, 0.2)] + [np.full(2 * RATE, 0.3)]
    out = joined(signals, RATE, 10.0)
    assert out.size == 10 * RATE  # exactly the length asked for, pauses included
    pause = round(JOIN_PAUSE_S * RATE)
    heard = {value: int(np.count_nonzero(np.isclose(out, value))) for value in (0.1, 0.2, 0.3)}
    assert heard[0.3] == 2 * RATE  # the short one gives all it has
    assert heard[0.1] + heard[0.2] == 10 * RATE - 2 * pause - 2 * RATE
    assert abs(heard[0.1] - heard[0.2]) <= 1  # the others share what is left equally
    assert int(np.count_nonzero(out == 0)) == 2 * pause


def test_a_join_shorter_than_asked_is_every_sample_whole() -> None:
    signals = [np.full(RATE, 0.1), np.full(RATE, 0.2)]
    assert joined(signals, RATE, 20.0).size == 2 * RATE + round(JOIN_PAUSE_S * RATE)


def test_another_speaker_is_warned_and_one_speaker_is_not() -> None:
    same = [voice_traits(speech_mono(6.0, RATE, seed=seed).astype(np.float64), RATE) for seed in range(3)]
    sentence = "Please call Stella and ask her to bring these things with her from the store."
    other = voice_traits(speak(sentence, RATE, voice="en+f3").astype(np.float64), RATE)
    members = [Member(str(i), 5.0, -20.0 - i, traits) for i, traits in enumerate(same)]
    alike = set_report(members)
    assert (alike.sample_count, alike.measured, alike.speech_s, alike.loudness_spread_lu) == (3, True, 15.0, 2.0)
    assert alike.warnings == []
    assert alike.pitch_spread_semitones is not None
    assert alike.pitch_spread_semitones < 4.0
    mixed = set_report([*members, Member("odd", 5.0, -21.0, other)])
    assert [(w.code, w.sample_id) for w in mixed.warnings] == [("other_speaker", "odd")]


def test_takes_far_apart_in_loudness_are_warned_and_unmeasured_ones_are_not_compared() -> None:
    report = set_report([Member("a", 4.0, -14.0, None), Member("b", 3.0, -30.0, None)])
    assert (report.measured, report.speech_s, report.pitch_spread_semitones) == (False, 7.0, None)
    assert [w.code for w in report.warnings] == ["loudness_mismatch"]


def test_silence_has_no_traits() -> None:
    assert voice_traits(np.zeros(2 * RATE), RATE) == Traits(median_pitch_hz=None, spectrum_db=None)


def test_a_comment_changes_the_bytes_of_a_wav_but_not_its_audio() -> None:
    wav = float_to_wav(np.sin(np.arange(RATE) / 10) * 0.5, RATE)
    tagged = with_comment(wav, "voicegate vg-1")
    assert tagged != wav
    assert with_comment(wav, "voicegate vg-2") != tagged
    assert np.array_equal(wav_to_float(tagged)[0], wav_to_float(wav)[0])
    assert with_comment(b"ID3 not a wav", "x") == b"ID3 not a wav"


@pytest.mark.parametrize("seconds", [10.0, 15.0])
def test_a_join_of_real_speech_is_the_length_asked(seconds: float) -> None:
    signals = [speech_mono(8.0, RATE, seed=seed).astype(np.float64) for seed in range(3)]
    assert joined(signals, RATE, seconds).size == round(seconds * RATE)
