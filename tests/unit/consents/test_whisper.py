"""Consent phrases beyond English, heard by Whisper (backend/consents/whisper.py, the check in
backend/consents/phrase.py), on real speech in each language: FLEURS (CC BY 4.0) and Mozilla Common Voice (CC0)
recordings in tests/clips/languages (SOURCES.tsv says where each came from; THIRD_PARTY_NOTICES.md).

No recording there reads voicegate's phrase, so a reading is made of real speech: a clip's own sentence stands for
the phrase's words, and for Chinese, Spanish and German (the languages with Common Voice's spoken digits) one
speaker's digits said after it stand for its code. A replay is the same recording held against the code one digit
off; a wrong sentence, another clip's sentence.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import pytest
import soundfile

from backend.audio.measure import resample
from backend.consents import phrase as phrase_module
from backend.consents import whisper
from backend.consents.languages import WORDINGS
from backend.consents.phrase import (
    MAX_NAME_TOKENS,
    WHISPER_DIGIT_MARGIN,
    WHISPER_FLOORS,
    WHISPER_FOLLOWED_SLACK,
    WHISPER_LAST_DIGIT,
    WHISPER_MORE_DIGITS,
    Phrase,
    PhraseCheck,
    check_phrase,
    phrase_for,
    refusal,
)
from backend.errors import SettingsError
from tests.noisy_room import in_room, spliced

CLIPS = Path(__file__).resolve().parents[2] / "clips" / "languages"
RATE = whisper.RATE
SENTENCES: dict[str, list[tuple[str, str]]] = {}
with (CLIPS / "SOURCES.tsv").open(encoding="utf-8") as sources:
    for row in csv.DictReader(sources, delimiter="\t"):
        if not Path(row["file"]).name.startswith("digit_"):
            SENTENCES.setdefault(row["language"], []).append((row["file"], row["transcript"]))
#: Which of the Chinese clips is a reading (FLEURS) whose 六 after a 五 Whisper expects to be 五 again.
FLEURS_ZH_012 = [name for name, _ in SENTENCES["zh"]].index("zh/fleurs_zh_012.flac")
#: The languages whose digits are in tests/clips/languages, one speaker each (Japanese's one to nine: the codes
#: here have no zero).
WITH_DIGITS = ("zh", "es", "de", "fr", "it", "pt", "ja")


def load(name: str) -> np.ndarray:
    samples, rate = soundfile.read(CLIPS / name, dtype="float32", always_2d=True)
    return resample(samples.mean(axis=1), rate, RATE)


def reading(language: str, code: str, *, last_silenced: bool = False, clip: int = 0) -> tuple[np.ndarray, str]:
    """The ``clip``-th clip of ``language``, then another speaker saying ``code``'s digits (half a second after it,
    0.15 s apart) at the clip's level, and the sentence the clip says; the last digit's stretch silenced if
    ``last_silenced``."""
    name, sentence = SENTENCES[language][clip]
    digits = [load(f"{language}/digit_{int(digit):02d}.flac") for digit in code]
    audio = spliced([load(name), *digits], [0.5] + [0.15] * len(code))
    if last_silenced:
        audio[-int(0.15 * RATE) - digits[-1].size :] = 0.0
    return audio, sentence


def phrase(sentence: str, code: str, language: str) -> Phrase:
    """A phrase whose words are ``sentence`` and whose code is ``code``, as the language writes it."""
    wording = WORDINGS[language]
    return Phrase(text=f"{sentence}{wording.separator}{wording.code_words(code)}.", code=code, language=language)


def checked(monkeypatch: pytest.MonkeyPatch, audio: np.ndarray, against: Phrase) -> tuple[PhraseCheck, whisper.Hearing]:
    """``check_phrase``'s verdict on ``audio`` and the hearing it was made from (one pass of the model for both)."""
    real = whisper.shared()
    hearings: list[whisper.Hearing] = []

    class Watched:
        def hear(self, *args: object, **kwargs: Any) -> whisper.Hearing:
            hearings.append(real.hear(*args, **kwargs))  # type: ignore[arg-type]
            return hearings[-1]

    monkeypatch.setattr(whisper, "shared", Watched)
    check = check_phrase(audio, RATE, against)
    assert len(hearings) == 1
    return check, hearings[0]


@pytest.fixture(scope="module")
def model() -> whisper.Whisper:
    return whisper.shared()


@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_a_sentence_scores_above_its_languages_floor_and_another_sentence_under_it(
    model: whisper.Whisper, language: str
) -> None:
    (name, said), (_, other) = SENTENCES[language][:2]
    audio = load(name)
    floor = WHISPER_FLOORS[language]

    wording = WORDINGS[language]
    right = model.hear(audio, language=language, text=said, name="", code="", wording=wording)
    wrong = model.hear(audio, language=language, text=other, name="", code="", wording=wording)

    assert right.text_score > floor, right
    assert wrong.text_score < floor, wrong
    assert right.tokens > 10


@pytest.mark.parametrize("language", WITH_DIGITS)
def test_a_reading_with_its_code_is_verified_and_its_replay_and_another_sentence_are_refused(language: str) -> None:
    audio, sentence = reading(language, "4719")
    other = SENTENCES[language][1][1]

    right = check_phrase(audio, RATE, phrase(sentence, "4719", language))
    replay = check_phrase(audio, RATE, phrase(sentence, "4718", language))
    wrong = check_phrase(audio, RATE, phrase(other, "4719", language))

    assert refusal(right) is None, right
    assert right.code_heard
    assert right.word_accuracy >= 0.5
    hearing = whisper.shared().hear(
        audio, language=language, text=sentence, name="", code="4719", wording=WORDINGS[language]
    )
    assert (hearing.heard, hearing.margin >= WHISPER_DIGIT_MARGIN) == ("4719", True), hearing
    # Refused as not the phrase, or as too noisy to tell (a FLEURS sentence's own noise, estimated under the bar).
    assert refusal(replay) in {"phrase_mismatch", "too_noisy"}, replay
    assert not replay.code_heard
    assert refusal(wrong) in {"phrase_mismatch", "too_noisy"}, wrong
    assert wrong.word_accuracy < 0.5


@pytest.mark.parametrize("language", WITH_DIGITS)
def test_a_reading_that_goes_on_past_its_code_is_refused(monkeypatch: pytest.MonkeyPatch, language: str) -> None:
    """The digits read in order (Japanese's one to nine) were heard as the code of their first four, each digit
    the likeliest at its place: that Whisper expects more digits after the code refuses them."""
    digits = "123456789" if language == "ja" else "0123456789"
    audio, sentence = reading(language, digits)
    code = digits[:4]

    check, hearing = checked(monkeypatch, audio, phrase(sentence, code, language))

    assert (hearing.heard, hearing.margin >= WHISPER_DIGIT_MARGIN) == (code, True), hearing
    assert hearing.more > WHISPER_MORE_DIGITS, hearing
    assert not check.code_heard
    assert refusal(check) in {"phrase_mismatch", "too_noisy"}, check


@pytest.mark.parametrize("language", WITH_DIGITS)
def test_a_replay_whose_last_digit_is_silenced_is_refused(monkeypatch: pytest.MonkeyPatch, language: str) -> None:
    """An older reading of 4895 with its 5 silenced, held against 4898: Whisper guesses the last digit, and after a
    9 its guess is the 8 the digits told in reverse put there (Japanese heard 4898 so). That it expects the phrase
    to end after the 9 refuses it; a right reading expects its last digit (its test above is verified)."""
    audio, sentence = reading(language, "4895", last_silenced=True)

    check, hearing = checked(monkeypatch, audio, phrase(sentence, "4898", language))

    assert hearing.last < WHISPER_LAST_DIGIT, hearing
    assert not check.code_heard
    assert refusal(check) in {"phrase_mismatch", "too_noisy"}, check


def test_the_digit_before_a_place_inside_the_code_is_handicapped_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whisper, forced through a code's 五, expects 五 again where this right reading of 5690 says 六: with each
    digit heard alone, it heard 5590 unless the digit before was handicapped. Heard with what follows it, 五 is
    not followed by the 九 the recording says next, and the reading is verified either way; the handicap still takes
    ``REPEAT_HANDICAP`` from the digit before at the code's inner places, and nothing from the others."""
    audio, sentence = reading("zh", "5690", clip=FLEURS_ZH_012)
    against = phrase(sentence, "5690", "zh")

    check, hearing = checked(monkeypatch, audio, against)
    handicap = whisper.REPEAT_HANDICAP
    monkeypatch.setattr(whisper, "REPEAT_HANDICAP", 0.0)
    unhandicapped, bare = checked(monkeypatch, audio, against)

    assert refusal(check) is None, (check, hearing)
    assert (unhandicapped.heard, refusal(unhandicapped)) == ("5690", None), unhandicapped
    taken = np.subtract(bare.scores, hearing.scores)
    expected = np.zeros((4, 10))
    expected[1, 5] = expected[2, 6] = handicap
    np.testing.assert_allclose(taken, expected, atol=1e-4)


def test_a_reading_that_says_the_digit_before_again_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """1555 read for 1565 (an older reading spliced where it lacks the 6): the 5 said again is heard above the 6
    by more than the handicap, so it does not hide it; ruled out altogether, it would be taken for the code."""
    audio, sentence = reading("zh", "1555", clip=1)
    against = phrase(sentence, "1565", "zh")

    check, hearing = checked(monkeypatch, audio, against)
    monkeypatch.setattr(whisper, "REPEAT_HANDICAP", math.inf)
    ruled_out = check_phrase(audio, RATE, against)

    assert (hearing.heard, check.code_heard) == ("1555", False), hearing
    assert refusal(check) == "phrase_mismatch", check
    assert refusal(ruled_out) is None, ruled_out


def test_the_digit_before_the_last_is_not_handicapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the last place the digit before is also what Whisper expects where nothing more is said: 2811 read for
    2812 is refused however large the handicap, which would otherwise leave the 2 the digits told in order put
    after a 1."""
    audio, sentence = reading("zh", "2811")
    monkeypatch.setattr(whisper, "REPEAT_HANDICAP", 100.0)

    check, hearing = checked(monkeypatch, audio, phrase(sentence, "2812", "zh"))

    assert (hearing.heard, refusal(check)) == ("2811", "phrase_mismatch"), (check, hearing)


def test_an_older_code_that_repeats_a_digit_is_heard_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """Codes drawn before digits were kept from repeating can say one twice: where the code does, its own digit is
    not handicapped, however large the handicap; a code of one digit four times is heard as with none."""
    audio, sentence = reading("zh", "5555")
    against = phrase(sentence, "5555", "zh")

    monkeypatch.setattr(whisper, "REPEAT_HANDICAP", 100.0)
    check, hearing = checked(monkeypatch, audio, against)
    monkeypatch.setattr(whisper, "REPEAT_HANDICAP", 0.0)
    _, unhandicapped = checked(monkeypatch, audio, against)

    assert (check.heard, refusal(check)) == ("5555", None), check
    assert hearing.margin == unhandicapped.margin, (hearing, unhandicapped)


def said_from(
    model: whisper.Whisper, audio: np.ndarray, sentence: str, said: str, place: int
) -> tuple[np.ndarray, list[int]]:
    """The log-probabilities of every token from ``place`` of the code ``said`` on, for a Chinese phrase of
    ``sentence`` then ``said`` heard in ``audio`` by the decoder's plain pass, as ``Whisper.hear`` forces it (the
    digit words told in order and in reverse): (passes, tokens, vocabulary), row j at the place's j-th token; and
    those tokens."""
    wording = WORDINGS["zh"]
    tokens = whisper.tokenizer()
    encoded = np.asarray(model._model.encode(ctranslate2.StorageView.from_array(whisper.log_mel(audio)[None])))[0]
    prompt = [tokens.special(f"<|{name}|>") for name in ("startoftranscript", "zh", "transcribe", "notimestamps")]
    told = [
        [tokens.special("<|startofprev|>"), *tokens.encode(wording.separator.join(order))]
        for order in (wording.digit_words, wording.digit_words[::-1])
    ]
    ids, at = tokens.encode(sentence), 0
    for index, digit in enumerate(said):
        ids += tokens.encode(wording.separator) if index else []
        at = len(ids) if index == place else at
        ids += tokens.encode(wording.digit_words[int(digit)])
    sequences = [before + prompt + ids for before in told]
    logits = model._decoder.logits(encoded, sequences, [len(before) + len(prompt) + at - 1 for before in told])
    return logits - np.log(np.exp(logits.astype(np.float64)).sum(axis=-1, keepdims=True)), ids[at:]


def test_each_place_but_the_last_is_heard_with_what_follows_it(model: whisper.Whisper) -> None:
    """A digit's score at a place but the last is what the phrase would score, had it said that digit there: the
    log-probabilities of its word's tokens, the separator and the code's next digit's first token, each given the
    recording and the phrase before it (the two passes' mean; inside the code, the digit before handicapped). At
    the last place it is its word's or its numeral's first token alone. Worked out here by the decoder's plain
    pass over each phrase, where the hearing branches from one (零's word is two tokens)."""
    code = "4709"
    audio, sentence = reading("zh", code)
    wording = WORDINGS["zh"]
    hearing = model.hear(audio, language="zh", text=sentence, name="", code=code, wording=wording)

    for place in range(len(code)):
        expected = []
        for value in range(10):
            logp, said = said_from(model, audio, sentence, code[:place] + str(value) + code[place + 1 :], place)
            if place < len(code) - 1:
                span = len(whisper.tokenizer().encode(wording.digit_words[value])) + 2  # the separator, the next
                score = np.mean([sum(row[index, said[index]] for index in range(span)) for row in logp])
            else:
                numeral = whisper.tokenizer().encode(str(value))[0]
                score = np.mean([max(row[0, said[0]], row[0, numeral]) for row in logp])
            if 0 < place < len(code) - 1 and value == int(code[place - 1]):
                score -= whisper.REPEAT_HANDICAP
            expected.append(score)
        np.testing.assert_allclose(hearing.scores[place], expected, atol=2e-3)
    assert hearing.heard == code


def test_a_first_digit_heard_as_another_alone_is_heard_with_what_follows_it(
    monkeypatch: pytest.MonkeyPatch, model: whisper.Whisper
) -> None:
    """A right reading of 5978 in babble at 20 dB: heard alone, its first digit is 一 (the check before
    2026-12-01 heard 1978 and refused it); 一 is not followed by the 九 the recording says next, and 五 is."""
    audio, sentence = reading("zh", "5978", clip=1)
    noisy = in_room(audio, RATE, "babble", 20.0, seed=0)

    check, hearing = checked(monkeypatch, noisy, phrase(sentence, "5978", "zh"))
    heard = model.hear(noisy, language="zh", text=sentence, name="", code="5978", wording=WORDINGS["zh"])
    firsts = [whisper.tokenizer().encode(word)[0] for word in WORDINGS["zh"].digit_words]
    alone = np.mean(said_from(model, noisy, sentence, "5978", 0)[0][:, 0, firsts], axis=0)

    assert refusal(check) is None, (check, hearing)
    assert heard.heard == "5978", heard
    assert int(np.argmax(alone)) == 1, alone


def test_a_reading_missing_the_codes_first_digit_is_refused_though_followed_it_is_the_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4, 1, 0 read for 0410: followed by the code's next digit (4), the 4 said first loses to the code's 0, and the
    reading is heard as 0410; but the 0 trails the 4 heard alone by more than ``WHISPER_FOLLOWED_SLACK``, as a digit
    heard in a pause does not (a helper's attack, accepted before the slack)."""
    audio, sentence = reading("es", "410")
    against = phrase(sentence, "0410", "es")

    check, hearing = checked(monkeypatch, audio, against)
    monkeypatch.setattr(phrase_module, "WHISPER_FOLLOWED_SLACK", math.inf)
    unbounded = check_phrase(audio, RATE, against)

    assert (hearing.heard, hearing.trailing > WHISPER_FOLLOWED_SLACK) == ("0410", True), hearing
    assert refusal(check) == "phrase_mismatch", check
    assert refusal(unbounded) is None, unbounded


def test_whisper_is_told_the_digit_words_in_order_and_in_reverse_before_it_hears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Told the ten digit words in one order, Whisper expects that order's next digit (a right reading of 1571 was
    heard as 1578); told them in both, a digit's neighbours are favoured alike. The model's calls are watched, not
    replaced: the reading is heard by the real model, and verified."""
    audio, sentence = reading("zh", "4719")
    model = whisper.shared()
    real = model._decoder
    asked: list[list[list[int]]] = []

    class Watched:
        def branched(self, encoded: Any, sequences: list[list[int]], first: list[int], branches: Any) -> Any:
            asked.append(sequences)
            return real.branched(encoded, sequences, first, branches)

    monkeypatch.setattr(model, "_decoder", Watched())
    check = check_phrase(audio, RATE, phrase(sentence, "4719", "zh"))

    assert refusal(check) is None, check
    tokens = whisper.tokenizer()
    told = [tokens.encode("、".join(order)) for order in (WORDINGS["zh"].digit_words, WORDINGS["zh"].digit_words[::-1])]
    start = [tokens.special(name) for name in ("<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|notimestamps|>")]
    [prompts] = asked
    assert [prompt[: 1 + len(digits) + len(start)] for prompt, digits in zip(prompts, told, strict=True)] == [
        [tokens.special("<|startofprev|>"), *digits, *start] for digits in told
    ]
    assert prompts[0][-20:] == prompts[1][-20:]


def test_a_subjects_name_does_not_count_towards_the_words_heard() -> None:
    """A name of one syllable repeated is nearly certain to Whisper once forced: were it counted, it would carry a
    recording of another sentence, followed by the right code, past the floor."""
    audio, _ = reading("zh", "4719")
    # 62 tokens, under MAX_NAME_TOKENS: counted, the words before the code scored -2.85, over the floor.
    check = check_phrase(audio, RATE, phrase_for("Ana-" * 21, "4719", "zh"))
    assert refusal(check) == "phrase_mismatch", check
    assert check.word_accuracy < 0.5


def test_punctuation_in_the_phrase_does_not_count_towards_the_words_heard(model: whisper.Whisper) -> None:
    """Whisper writes Chinese's full-width comma as ",": counted, the three tokens of one it did not expect cost
    it about 23 nats (this sentence's score fell from -0.16 to -0.98 with one), and Chinese's phrase has three."""
    audio, sentence = reading("zh", "4719")
    assert "规模" in sentence
    plain, with_comma = (
        model.hear(audio, language="zh", text=text, name="", code="4719", wording=WORDINGS["zh"])
        for text in (sentence, sentence.replace("规模", "规模\uff0c"))
    )
    assert with_comma.tokens == plain.tokens
    assert with_comma.text_score > plain.text_score - 0.3, (with_comma, plain)


def test_a_phrase_with_no_word_before_its_code_is_not_heard(model: whisper.Whisper) -> None:
    """Not a phrase voicegate makes; but were one stored, nothing counted must not read as a certain text."""
    audio, _ = reading("es", "4719")
    hearing = model.hear(audio, language="es", text="¿,", name="", code="4719", wording=WORDINGS["es"])
    assert (hearing.tokens, hearing.text_score) == (0, -math.inf)
    check = check_phrase(audio, RATE, Phrase(text="¿, cuatro, siete, uno, nueve.", code="4719", language="es"))
    assert refusal(check) == "phrase_mismatch", check
    assert check.word_accuracy == 0.0


def test_a_name_too_long_for_whisper_is_refused_when_the_phrase_is_made() -> None:
    # 100 characters, as many as any language takes, but about 450 of Whisper's tokens.
    with pytest.raises(ValueError, match=f"{MAX_NAME_TOKENS} tokens"):
        phrase_for("\U00012000" * 100, "4719", "es")
    assert phrase_for("María José García-Łukasiewicz", "4719", "es").code == "4719"


def test_a_reading_after_a_long_silence_is_heard_from_its_speech() -> None:
    # Whisper hears 30 s: the recording (60 s at most) is heard from just before its speech starts.
    audio, sentence = reading("es", "4719")
    late = np.concatenate([np.zeros(35 * RATE, dtype=np.float32), audio])
    check = check_phrase(late, RATE, phrase(sentence, "4719", "es"))
    assert refusal(check) is None, check


def test_the_front_end_is_whispers() -> None:
    """Whisper's filterbank is librosa's mel filters for its 400-point spectrum (Slaney's scale and area), as
    whisper/audio.py made it; a tone lands in the band of its frequency."""
    import librosa  # noqa: PLC0415 - its import takes a second, for this test alone

    reference = librosa.filters.mel(sr=RATE, n_fft=400, n_mels=80)
    assert np.abs(whisper._mel_filters() - reference).max() < 1e-6 * reference.max()
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(2 * RATE) / RATE)).astype(np.float32)
    features = whisper.log_mel(tone)
    # The tone's 2 s and a second of silence after it, 100 frames a second; a recording past 30 s is cut there.
    assert features.shape == (80, 300)
    assert whisper.log_mel(np.zeros(RATE * 35 // 10, dtype=np.float32)).shape == (80, 450)
    assert whisper.log_mel(np.zeros(40 * RATE, dtype=np.float32)).shape == (80, 3000)
    loudest = int(np.argmax(features[:, 50]))
    assert reference[loudest].argmax() * RATE / 400 == pytest.approx(1000, abs=80)
    # After the tone, silence: floored at 8 under the loudest.
    assert features[:, 250].max() == pytest.approx(features.max() - 2.0, abs=1e-5)


@pytest.mark.parametrize(("margin", "heard"), [(WHISPER_DIGIT_MARGIN - 0.01, False), (WHISPER_DIGIT_MARGIN, True)])
def test_a_code_is_heard_only_when_each_digit_beats_the_next_by_the_margin(
    monkeypatch: pytest.MonkeyPatch, margin: float, heard: bool
) -> None:
    """Noise can blur a code's digits to near-ties, where the likeliest is chance: a replay of another code was
    once taken for the new one so. The margin is the model's (the hearing's least lead of a digit over the next);
    what it makes of a real reading is below."""
    audio, sentence = reading("es", "4719")
    real = whisper.shared()

    class Blurred:
        def hear(self, *args: object, **kwargs: Any) -> whisper.Hearing:
            return dataclasses.replace(real.hear(*args, **kwargs), margin=margin)  # type: ignore[arg-type]

    monkeypatch.setattr(whisper, "shared", Blurred)
    check = check_phrase(audio, RATE, phrase(sentence, "4719", "es"))

    assert check.heard == "4719"
    assert check.code_heard is heard
    assert (refusal(check) is None) is heard


@pytest.mark.parametrize(
    ("last", "more", "heard"),
    [
        (WHISPER_LAST_DIGIT - 0.01, 0.0, False),
        (WHISPER_LAST_DIGIT, 0.0, True),
        (WHISPER_LAST_DIGIT, WHISPER_MORE_DIGITS, True),
        (WHISPER_LAST_DIGIT, WHISPER_MORE_DIGITS + 0.01, False),
    ],
)
def test_a_code_is_heard_only_when_its_last_digit_is_expected_and_no_more_digits_are(
    monkeypatch: pytest.MonkeyPatch, last: float, more: float, heard: bool
) -> None:
    """A code's digits all heard, the reading is refused if Whisper expected the phrase to end before the last
    digit (it was guessed) or more digits after it (the code was part of a longer number). What Whisper makes of
    real readings so is above."""
    audio, sentence = reading("es", "4719")
    real = whisper.shared()

    class Ended:
        def hear(self, *args: object, **kwargs: Any) -> whisper.Hearing:
            return dataclasses.replace(real.hear(*args, **kwargs), last=last, more=more)  # type: ignore[arg-type]

    monkeypatch.setattr(whisper, "shared", Ended)
    check = check_phrase(audio, RATE, phrase(sentence, "4719", "es"))

    assert check.heard == "4719"
    assert check.code_heard is heard
    assert (refusal(check) is None) is heard


def test_silence_is_not_speech_and_is_not_heard(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model() -> whisper.Whisper:
        raise AssertionError("a recording without speech was given to the model")

    monkeypatch.setattr(whisper, "shared", no_model)
    check = check_phrase(np.zeros(5 * RATE, dtype=np.float32), RATE, phrase("Hola", "4719", "es"))
    assert refusal(check) == "not_speech"


def test_the_model_is_loaded_once_per_process(model: whisper.Whisper) -> None:
    assert whisper.shared() is model


def test_a_hearing_lets_go_of_the_gil() -> None:
    """A reading is heard on the CPU executor while the event loop serves: the loop's thread must run meanwhile.
    A thread counting while the hearing runs gets a fair part as far as it does in the same time alone (on a loaded
    machine it shares the cores with the hearing; were the GIL held, it would not move at all)."""
    audio, sentence = reading("es", "4719")
    model = whisper.shared()
    done = threading.Event()

    def hear() -> None:
        model.hear(audio, language="es", text=sentence, name="", code="4719", wording=WORDINGS["es"])
        done.set()

    def count(until: threading.Event | float) -> tuple[int, float]:
        started, turns = time.perf_counter(), 0
        while not (until.is_set() if isinstance(until, threading.Event) else time.perf_counter() > until):
            turns += 1
        return turns, time.perf_counter() - started

    hearing = threading.Thread(target=hear)
    hearing.start()
    beside, seconds = count(done)
    hearing.join()
    alone, _ = count(time.perf_counter() + seconds)
    # With the GIL held throughout, the counter would not move until the hearing ends.
    assert beside > 0.1 * alone, (beside, alone)


def test_missing_weights_stop_a_server_that_offers_languages_beyond_english(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> whisper.Whisper:
        raise whisper.WeightsMissing("Whisper's weights or CTranslate2 are not installed: run `make up` ...")

    monkeypatch.setattr(whisper, "_LOADED", [])
    monkeypatch.setattr(whisper.Whisper, "load", staticmethod(missing))
    whisper.use_languages(("en",))  # English alone needs no Whisper
    with pytest.raises(SettingsError, match=r"VOICEGATE_CONSENT_LANGUAGES names languages beyond English.*make up"):
        whisper.use_languages(("en", "de"))
