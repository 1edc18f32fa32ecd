"""The spoken consent phrase: its shape, and the offline check of a recording, on natural speech.

The phrases are spoken by hibari, the `local` provider's voice, as it is and moved towards a LibriSpeech speaker
by the `local` engine; real speech that is not the phrase comes from the LibriSpeech clips in tests/clips
(CC BY 4.0, see THIRD_PARTY_NOTICES.md), and so does the babble of a noisy room (tests/noisy_room.py). Codes and
noises are fixed here (``phrase_for``, seeds) so a run hears what the last one did; ``make_phrase`` draws them.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from backend.consents import phrase as module
from backend.consents.phrase import (
    CODE_DIGITS,
    DIGIT_WORDS,
    DIGITS,
    MIN_SPEECH_SECONDS,
    MIN_WORD_ACCURACY,
    NOISY_SNR_DB,
    NOT_SPEECH_SECONDS,
    Phrase,
    PhraseCheck,
    align,
    check_phrase,
    drawn_code,
    make_phrase,
    phrase_for,
    refusal,
    words,
)
from backend.providers.local.engine import render
from backend.providers.local.hibari_voice import HibariVoice
from backend.providers.local.profile import measure
from tests.noisy_room import RATE as ROOM_RATE
from tests.noisy_room import Noise, in_room

CLIPS = Path(__file__).resolve().parents[2] / "clips" / "librispeech"
#: A man's clip: the voice moved to him is the furthest from hibari's own.
MOVED_TO = CLIPS / "2414" / "2414-128291-0005.flac"
RATE = HibariVoice.sample_rate
WRONG_SENTENCE = "Please call Stella and ask her to bring these things with her from the store."

Speak = Callable[[str], np.ndarray]


@pytest.fixture(scope="module")
def voices() -> dict[str, Speak]:
    """hibari as it is, and moved by the local engine towards a LibriSpeech speaker (a man); each text is rendered
    once for the module."""
    hibari = HibariVoice.shared()
    samples, rate = soundfile.read(MOVED_TO)
    profile = measure(samples, rate)
    return {
        "hibari": functools.cache(hibari.speak),
        "moved to 2414": functools.cache(lambda text: render(text, profile)[0].astype(np.float32)),
    }


@pytest.fixture(scope="module")
def spoken(voices: dict[str, Speak]) -> tuple[Phrase, np.ndarray]:
    """hibari reading a phrase, once for the tests that take it apart."""
    phrase = phrase_for("Jane Doe", "4719")
    return phrase, voices["hibari"](phrase.text)


def test_the_phrase_names_the_subject_and_voicegate_and_ends_with_the_code_as_words() -> None:
    phrase = make_phrase("  Jane   Doe ")
    assert phrase.language == "en"
    assert "Jane Doe" in phrase.text
    assert "voicegate" in phrase.text
    assert "synthetic voice" in phrase.text
    assert "my recordings" in phrase.text
    assert "text I type" in phrase.text
    assert re.fullmatch(r"[0-9]{4}", phrase.code)
    assert words(phrase.text)[-4:] == [DIGIT_WORDS[int(digit)] for digit in phrase.code]


def test_every_phrase_has_a_fresh_code() -> None:
    codes = [make_phrase("Jane Doe").code for _ in range(50)]
    # 50 draws of 7,290 codes repeat one about once in six runs; 6 repeats, never in practice.
    assert len(set(codes)) >= 45


def test_no_digit_of_a_code_is_the_one_before_it_and_every_other_digit_is_drawn() -> None:
    codes = [make_phrase("Jane Doe").code for _ in range(2000)]
    assert all(a != b for code in codes for a, b in itertools.pairwise(code)), codes
    # Each place draws every digit (200 times each on average at the first; none missing in practice).
    assert all({code[place] for code in codes} == set(DIGITS) for place in range(CODE_DIGITS))
    # The first of what is left after the digit before: the draw chooses among the nine others.
    assert drawn_code(lambda options: options[0]) == "0101"
    assert drawn_code(lambda options: options[-1], "123456789") == "9898"


@pytest.mark.parametrize(
    ("name", "language"),
    [("Jane Doe", "nl"), ("", "en"), ("   ", "en"), ("x" * 101, "en")],
    ids=["a language without a wording", "an empty name", "a blank name", "a name too long"],
)
def test_a_phrase_that_cannot_be_made_is_refused(name: str, language: str) -> None:
    with pytest.raises(ValueError, match=r"language|name"):
        make_phrase(name, language)


@pytest.mark.parametrize(
    "code", ["123", "12345", "12a4", "\uff11\uff12\uff13\uff14"], ids=["short", "long", "a letter", "wide digits"]
)
def test_a_code_that_is_not_four_digits_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="code must be 4 digits"):
        phrase_for("Jane Doe", code)


@pytest.mark.parametrize(
    ("audio", "rate"),
    [(np.zeros((1, 2, 16000), np.float32), 16000), (np.zeros(16000, np.float32), 0)],
    ids=["three dimensions", "no rate"],
)
def test_audio_of_another_shape_or_rate_cannot_be_checked(audio: np.ndarray, rate: int) -> None:
    with pytest.raises(ValueError, match=r"shape|rate"):
        check_phrase(audio, rate, phrase_for("Jane Doe", "4719"))


def test_a_phrase_in_a_language_without_a_wording_cannot_be_checked(spoken: tuple[Phrase, np.ndarray]) -> None:
    phrase, audio = spoken
    with pytest.raises(ValueError, match="language 'nl'"):
        check_phrase(audio, RATE, Phrase(text=phrase.text, code=phrase.code, language="nl"))


@pytest.mark.parametrize(
    ("voice", "name", "code"),
    [
        ("hibari", "Jane Doe", "4719"),
        ("moved to 2414", "Kathleen Dang", "0328"),
        # Neither name is in the dictionary: the grammar and the score leave them out.
        ("hibari", "Oluwaseun Adeyemi", "5602"),
        ("moved to 2414", "Björn Lindqvist", "9174"),
    ],
)
def test_the_phrase_read_aloud_is_accepted(voices: dict[str, Speak], voice: str, name: str, code: str) -> None:
    phrase = phrase_for(name, code)
    check = check_phrase(voices[voice](phrase.text), RATE, phrase)
    assert refusal(check) is None, check
    assert check.code_heard
    assert check.word_accuracy >= MIN_WORD_ACCURACY
    assert "voicegate" in check.heard.split()


def test_stereo_at_another_rate_is_heard_as_mono(spoken: tuple[Phrase, np.ndarray]) -> None:
    phrase, audio = spoken
    at_44k = resample_poly(audio, 147, 80).astype(np.float32)  # 24 kHz to 44.1 kHz
    stereo = np.stack([at_44k, 0.5 * at_44k])
    check = check_phrase(stereo, 44100, phrase)
    assert refusal(check) is None, check
    assert check.heard == check_phrase(audio, RATE, phrase).heard


def test_a_wrong_sentence_is_a_phrase_mismatch(voices: dict[str, Speak]) -> None:
    check = check_phrase(voices["hibari"](WRONG_SENTENCE), RATE, phrase_for("Jane Doe", "4719"))
    assert check.speech_seconds >= MIN_SPEECH_SECONDS
    assert check.word_accuracy < MIN_WORD_ACCURACY
    assert refusal(check) == "phrase_mismatch"


@pytest.mark.parametrize("voice", ["hibari", "moved to 2414"])
def test_the_phrase_with_another_code_is_a_replay_and_refused(voices: dict[str, Speak], voice: str) -> None:
    phrase, old = phrase_for("Jane Doe", "4719"), phrase_for("Jane Doe", "2856")
    check = check_phrase(voices[voice](old.text), RATE, phrase)
    assert not check.code_heard
    assert refusal(check) == "phrase_mismatch"
    # The words are the phrase's: the code alone tells the replay, heard again with the digits alone too.
    assert check.word_accuracy >= MIN_WORD_ACCURACY
    assert not check.code_alone


def test_a_digit_of_the_code_heard_as_a_word_of_the_phrase_is_heard_again_with_the_digits_alone(
    voices: dict[str, Speak], monkeypatch: pytest.MonkeyPatch
) -> None:
    """White noise made "four" the phrase's "voice": the code's stretch heard by the digits' loop says it."""
    phrase = phrase_for("Jane Doe", "4719")
    recognise = module._Recogniser.recognise

    def mishear(
        self: module._Recogniser, audio: np.ndarray, vocabulary: list[str], cmn: str | None = None
    ) -> module.Heard:
        heard = recognise(self, audio, vocabulary, cmn)
        if "voice" not in vocabulary:  # the digits' loop hears as it does
            return heard
        return module.Heard(["voice" if word == "four" else word for word in heard.words], heard.ends, heard.cmn)

    monkeypatch.setattr(module._Recogniser, "recognise", mishear)
    check = check_phrase(voices["hibari"](phrase.text), RATE, phrase)
    assert check.heard.split()[-4:] == ["voice", "seven", "one", "nine"]
    assert check.code_heard
    assert check.code_alone
    assert refusal(check) is None
    replay = check_phrase(voices["hibari"](phrase_for("Jane Doe", "4716").text), RATE, phrase)
    assert not replay.code_heard
    assert refusal(replay) == "phrase_mismatch"


#: Readings of the phrase put in each noisy room (another noise, another code each); issue 56's targets, held to
#: on this few: most of them verified.
DRAWS = 6


@pytest.mark.parametrize(
    ("noise", "snr_db", "verified"),
    [("babble", 20, 5), ("white", 15, 5), ("babble", 15, 4)],
    ids=["babble 20 dB", "white 15 dB", "babble 15 dB"],
)
@pytest.mark.parametrize("voice", ["hibari", "moved to 2414"])
def test_the_phrase_read_in_a_noisy_room_is_accepted(
    voices: dict[str, Speak], voice: str, noise: Noise, snr_db: int, verified: int
) -> None:
    """The recogniser strings words through the noise before and after the reading: they are not the phrase's
    errors. Before issue 56 these were refused (under babble, every one)."""
    checks = []
    for draw in range(DRAWS):
        phrase = phrase_for("Jane Doe", f"{(4719 + 1237 * draw) % 10000:04d}")
        recording = in_room(voices[voice](phrase.text), RATE, noise, snr_db, seed=draw)
        checks.append(check_phrase(recording, ROOM_RATE, phrase))
    assert sum(refusal(check) is None for check in checks) >= verified, checks


@pytest.mark.parametrize("noise", ["babble", "white"])
def test_a_wrong_sentence_or_a_replay_in_a_noisy_room_is_refused(voices: dict[str, Speak], noise: Noise) -> None:
    phrase, old = phrase_for("Jane Doe", "4719"), phrase_for("Jane Doe", "2856")
    for said in (WRONG_SENTENCE, old.text):
        check = check_phrase(in_room(voices["hibari"](said), RATE, noise, 15, seed=56), ROOM_RATE, phrase)
        assert refusal(check) == "too_noisy", check
        assert not check.code_heard


def test_a_phrase_not_heard_in_a_quiet_room_is_a_mismatch_and_in_a_loud_one_too_noisy() -> None:
    quiet = PhraseCheck(word_accuracy=0.3, code_heard=False, speech_seconds=9.0, heard="", snr_db=NOISY_SNR_DB)
    loud = PhraseCheck(word_accuracy=0.3, code_heard=False, speech_seconds=9.0, heard="", snr_db=NOISY_SNR_DB - 0.1)
    unmeasured = PhraseCheck(word_accuracy=0.3, code_heard=False, speech_seconds=9.0, heard="")
    assert [refusal(quiet), refusal(loud), refusal(unmeasured)] == ["phrase_mismatch", "too_noisy", "phrase_mismatch"]
    heard_over_it = PhraseCheck(word_accuracy=0.9, code_heard=True, speech_seconds=9.0, heard="", snr_db=12.0)
    assert refusal(heard_over_it) is None


def _noise() -> np.ndarray:
    return (0.1 * np.random.default_rng(46).standard_normal(8 * RATE)).astype(np.float32)


def _hum() -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220.0 * np.arange(8 * RATE) / RATE)).astype(np.float32)


@pytest.mark.parametrize(
    "audio",
    [np.zeros(8 * RATE, np.float32), _noise(), _hum(), np.zeros(0, np.float32)],
    ids=["silence", "white noise", "a hum", "nothing"],
)
def test_silence_and_noise_are_not_speech(audio: np.ndarray) -> None:
    check = check_phrase(audio, RATE, phrase_for("Jane Doe", "4719"))
    assert check.speech_seconds < NOT_SPEECH_SECONDS
    assert refusal(check) == "not_speech"
    assert not check.code_heard


def test_a_second_of_speech_is_too_short(spoken: tuple[Phrase, np.ndarray]) -> None:
    phrase, audio = spoken
    check = check_phrase(audio[: int(1.2 * RATE)], RATE, phrase)
    assert NOT_SPEECH_SECONDS <= check.speech_seconds < MIN_SPEECH_SECONDS
    assert refusal(check) == "too_short"


@pytest.mark.parametrize("clip", sorted(CLIPS.glob("*/*.flac")), ids=lambda path: path.stem)
def test_real_speech_that_is_not_the_phrase_is_refused(clip: Path) -> None:
    samples, rate = soundfile.read(clip, dtype="float32")
    check = check_phrase(samples, rate, phrase_for("Jane Doe", "4719"))
    assert not check.code_heard
    assert check.word_accuracy < MIN_WORD_ACCURACY
    # An audiobook's room is not a quiet one for every reader: under NOISY_SNR_DB, the refusal says so.
    heard_over = "too_noisy" if check.snr_db is not None and check.snr_db < NOISY_SNR_DB else "phrase_mismatch"
    assert refusal(check) == (heard_over if check.speech_seconds >= MIN_SPEECH_SECONDS else "too_short")


def test_threads_at_once_hear_what_one_does(
    voices: dict[str, Speak], spoken: tuple[Phrase, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    phrase, right = spoken
    recordings = [right, voices["hibari"](WRONG_SENTENCE), voices["hibari"](phrase_for("Jane Doe", "2856").text)]
    alone = [check_phrase(audio, RATE, phrase) for audio in recordings]
    pool = module._Pool(module._POCKETSPHINX["en"])
    monkeypatch.setitem(module._POOLS, "en", pool)
    # Every thread waits inside its recogniser until all hold one, so their first decodes run at once (a refused
    # recording is heard a second time, its noise gated: those hearings go on as they come).
    together = threading.Barrier(len(recordings), timeout=60)
    waited = threading.local()
    recognise = module._Recogniser.recognise

    def recognise_together(
        self: module._Recogniser, audio: np.ndarray, vocabulary: list[str], cmn: str | None = None
    ) -> module.Heard:
        if not getattr(waited, "once", False):
            waited.once = True
            together.wait()
        return recognise(self, audio, vocabulary, cmn)

    monkeypatch.setattr(module._Recogniser, "recognise", recognise_together)
    results: dict[int, list[PhraseCheck]] = {}

    def run(index: int) -> None:
        results[index] = [check_phrase(recordings[index], RATE, phrase) for _ in range(2)]

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(recordings))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {index: [alone[index]] * 2 for index in range(len(recordings))}
    assert [refusal(check) for check in alone] == [None, "phrase_mismatch", "phrase_mismatch"]
    assert pool.size() == len(recordings), "each thread had a recogniser of its own, given back after"


def test_words_fold_accents_case_and_punctuation() -> None:
    assert words("I, Zoë O\u2019Brien-Smith (42), type.") == ["i", "zoe", "o'brien", "smith", None, "type"]


def test_the_alignment_counts_errors_in_order_where_the_phrase_was_said_and_lets_a_gap_take_anything() -> None:
    def same(a: str, b: str) -> bool:
        return a == b or {a, b} == {"two", "to"}

    assert align(["my", "code", "is", "two"], ["my", "code", "is", "to"], same) == (0, {0, 1, 2, 3})
    assert align(["i", None, "consent"], ["i", "maria", "to", "consent"], same) == (0, {0, 2})
    assert align(["i", None, "consent"], ["i", "consent"], same) == (0, {0, 2})
    # The same words out of order are errors, not matches: the order is the phrase.
    errors, matched = align(["one", "two", "three"], ["three", "two", "one"], same)
    assert (errors, len(matched)) == (2, 1)
    assert align(["one", "two"], [], same) == (2, set())
    # Words heard before and after the phrase (the recogniser's reading of the room) are no errors; inside it they
    # are.
    assert align(["one"], ["one", "one", "one"], same) == (0, {0})
    assert align(["my", "code", "is"], ["i", "the", "my", "code", "is", "to", "i"], same) == (0, {0, 1, 2})
    assert align(["my", "code", "is"], ["the", "my", "i", "code", "is", "the"], same) == (1, {0, 1, 2})
    # Of two alignments with as few errors, the one that matches more: here the code's last digit.
    assert align(["three", "zero"], ["three", "eight", "zero"], same) == (1, {0, 1})


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (PhraseCheck(word_accuracy=0.0, code_heard=False, speech_seconds=0.0, heard=""), "not_speech"),
        (
            PhraseCheck(word_accuracy=1.0, code_heard=True, speech_seconds=NOT_SPEECH_SECONDS - 0.01, heard=""),
            "not_speech",
        ),
        (
            PhraseCheck(word_accuracy=1.0, code_heard=True, speech_seconds=MIN_SPEECH_SECONDS - 0.01, heard=""),
            "too_short",
        ),
        (
            PhraseCheck(word_accuracy=MIN_WORD_ACCURACY - 0.01, code_heard=True, speech_seconds=9.0, heard=""),
            "phrase_mismatch",
        ),
        (PhraseCheck(word_accuracy=1.0, code_heard=False, speech_seconds=9.0, heard=""), "phrase_mismatch"),
        (
            PhraseCheck(word_accuracy=1.0, code_heard=False, speech_seconds=9.0, heard="", snr_db=NOISY_SNR_DB - 1),
            "too_noisy",
        ),
        (
            PhraseCheck(word_accuracy=MIN_WORD_ACCURACY, code_heard=True, speech_seconds=MIN_SPEECH_SECONDS, heard=""),
            None,
        ),
    ],
)
def test_a_refusal_names_the_first_reason_that_applies(check: PhraseCheck, expected: str | None) -> None:
    assert refusal(check) == expected


def test_a_phrase_whose_text_does_not_end_with_its_code_cannot_be_checked(spoken: tuple[Phrase, np.ndarray]) -> None:
    phrase, audio = spoken
    with pytest.raises(ValueError, match="code"):
        check_phrase(audio, RATE, Phrase(text=phrase.text, code="1234", language="en"))
