"""The text rule that keeps voicegate from speaking a consent phrase (`backend.consents.spoken_text`): a text is
compared as a reader says it, reads as a consent phrase whoever it names and whatever its code, says a given phrase
when it says its code and a quarter of its words (or half of them without the code); and the texts voicegate's
own tests, benchmarks and page speak are none of these."""

from __future__ import annotations

import random

import pytest

from backend.clone.preview_step import PREVIEW_TEXT
from backend.consents.phrase import align, make_phrase, phrase_for
from backend.consents.spoken_text import (
    TEMPLATE_ACCURACY,
    TEMPLATES,
    accuracy,
    codes_in,
    fewest_errors,
    reads_as_consent,
    says_phrase,
    spoken_words,
)
from devkit.speech_maker import SENTENCES

PHRASE = phrase_for("Ada Lovelace", "4719")


def test_a_text_is_read_as_a_reader_says_it() -> None:
    assert spoken_words("My code is 4719.") == ["my", "code", "is", "four", "seven", "one", "nine"]
    assert spoken_words("Zoë's code: for, 7, won, NINE!") == ["zoe's", "code", "four", "seven", "one", "nine"]
    assert spoken_words("Call 0 oh eight") == ["call", "zero", "zero", "eight"]
    full_width = "".join(chr(0xFF10 + int(digit)) for digit in "4719")
    assert spoken_words(full_width) == ["four", "seven", "one", "nine"]


def test_the_codes_a_text_says_are_its_digits_in_order_with_at_most_two_words_between() -> None:
    assert codes_in(spoken_words("my code is four, seven, one, nine")) == {"4719"}
    assert "4719" in codes_in(spoken_words("four, um, seven, er, one and nine"))
    assert "4719" not in codes_in(spoken_words("four and then later seven, one and nine"))
    assert codes_in(spoken_words("no digits here at all")) == set()


@pytest.mark.parametrize(
    "text",
    [
        PHRASE.text,
        make_phrase("Grace Hopper").text,
        "I, someone else entirely, consent to voicegate making my synthetic voice from my recordings, to speak the"
        " text I type. My code is 1, 2, 3, 4.",
        # The phrase without its code: the piece a splice would take its words from.
        "I consent to voicegate making my synthetic voice from my recordings, to speak the text I type.",
        "Hello. " * 50 + PHRASE.text + " Goodbye." * 50,
    ],
)
def test_a_text_that_reads_as_a_consent_phrase_is_one_whoever_it_names(text: str) -> None:
    assert reads_as_consent(spoken_words(text))


@pytest.mark.parametrize(
    "text",
    [
        *SENTENCES,
        PREVIEW_TEXT,
        "I consent to the terms. My code is 1234.",
        "Call me at 555 4719 tomorrow, my code is on the card.",
        "My voice, my recordings and my text are mine to speak.",
    ],
)
def test_texts_that_are_no_consent_phrase_are_not_taken_for_one(text: str) -> None:
    words = spoken_words(text)

    assert not reads_as_consent(words)
    assert not says_phrase(words, PHRASE.text, PHRASE.code)


def test_a_text_says_a_phrase_with_its_code_and_a_quarter_of_its_words() -> None:
    said = spoken_words("Ada Lovelace. My code is for, 7, won, nine.")
    wrong_code = spoken_words("Ada Lovelace. My code is four, seven, one, eight.")

    assert not reads_as_consent(said), "too little of the wording to read as any phrase"
    assert says_phrase(said, PHRASE.text, PHRASE.code)
    assert not says_phrase(wrong_code, PHRASE.text, PHRASE.code)
    assert not says_phrase(spoken_words("four seven one nine"), PHRASE.text, PHRASE.code)


def test_a_long_name_that_carries_the_phrase_is_still_its_phrase() -> None:
    # A name chosen to carry the words, with few of the template's: the template rule does not see it, the
    # phrase's own does.
    phrase = phrase_for("the quick brown fox jumps over the lazy dog again and again", "0451")
    text = spoken_words("I, the quick brown fox jumps over the lazy dog again and again. My code is 0451.")

    assert not reads_as_consent(text)
    assert says_phrase(text, phrase.text, phrase.code)


def test_fewest_errors_counts_as_the_readings_alignment_does() -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible cases, no secret
    vocabulary = ["a", "b", "c", "d", "e"]
    same = str.__eq__
    for _ in range(300):
        reference: list[str | None] = [rng.choice([*vocabulary, None]) for _ in range(rng.randint(1, 8))]
        heard = [rng.choice(vocabulary) for _ in range(rng.randint(0, 12))]
        errors, _ = align(reference, heard, same)

        assert fewest_errors(reference, heard) == errors, (reference, heard)


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_text_reads_as_consent_exactly_when_the_alignment_says_so(template: list[str | None]) -> None:
    """`reads_as_consent` answers most texts without the alignment's table: on texts made from a template's words
    and some others, cut, changed and shuffled around the threshold, its answer is the table's."""
    rng = random.Random(11)  # noqa: S311 - reproducible cases, no secret
    words = [word for word in template if word is not None and word != "<digit>"]
    others = ["thanks", "calling", "weather", "today"]
    answers = set()
    for _ in range(1000):
        text = [rng.choice(["ada", "two", "nine"]) if word is None or word == "<digit>" else word for word in template]
        # Half the texts have only words changed: every change one error and one slot unfillable, the bound tight.
        kinds = ["change"] if rng.random() < 0.5 else ["cut", "change", "add", "swap"]
        for _ in range(rng.randint(0, len(template))):
            at = rng.randrange(len(text) + 1)
            edit = rng.choice(kinds)
            if edit == "cut" and text:
                del text[min(at, len(text) - 1)]
            elif edit == "change" and text:
                text[min(at, len(text) - 1)] = rng.choice(others)
            elif edit == "add":
                text.insert(at, rng.choice([*others, *words]))
            elif text:
                other = rng.randrange(len(text))
                mine = min(at, len(text) - 1)
                text[mine], text[other] = text[other], text[mine]
        expected = accuracy(template, text) >= TEMPLATE_ACCURACY
        assert reads_as_consent(text) == expected, text
        answers.add(expected)
    assert answers == {True, False}


@pytest.mark.parametrize("language", ["es", "de", "fr", "pt", "it"])
def test_a_phrase_in_a_language_written_in_latin_letters_reads_as_consent(language: str) -> None:
    assert reads_as_consent(spoken_words(phrase_for("Ada Lovelace", "4719", language).text))
    # With its code as numerals too.
    assert reads_as_consent(
        spoken_words(phrase_for("Ada Lovelace", "4719", language).text.rsplit(" ", 4)[0] + " 4719.")
    )


def test_chinese_and_japanese_phrases_are_not_compared_yet() -> None:
    # Their characters are no words here: a template of them would be "voicegate" and four digits alone.
    assert len(TEMPLATES) == 6
    assert not reads_as_consent(spoken_words(phrase_for("Ada Lovelace", "4719", "zh").text))
