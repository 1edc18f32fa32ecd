"""A job's text in the parts it is spoken in: sentence by sentence, short ones together, long ones cut at
a comma or a space, nothing lost, nothing over the limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.text import MAX_PIECE_CHARS, pieces, sentences


def test_short_sentences_stay_together_with_their_punctuation_and_quotes() -> None:
    assert pieces('Hello there. Is it? "Yes." Fine… ok') == ['Hello there. Is it? "Yes." Fine… ok']


def test_sentences_split_where_the_limit_would_be_passed() -> None:
    sentence = "This sentence is about sixty characters long, give or take a few."
    text = " ".join([sentence] * 10)
    parts = pieces(text)
    assert len(parts) > 1
    assert all(part.endswith("few.") for part in parts)
    assert " ".join(parts) == text


def test_a_long_sentence_is_cut_after_a_comma_before_a_space() -> None:
    text = ", ".join(f"clause {n} of a long sentence" for n in range(40)) + "."
    parts = pieces(text)
    assert all(len(part) <= MAX_PIECE_CHARS for part in parts)
    assert all(part.endswith(",") for part in parts[:-1])


def test_cjk_full_stops_end_sentences() -> None:
    assert pieces("你好。" * 120)[0].startswith("你好。 你好。")
    assert all(len(part) <= MAX_PIECE_CHARS for part in pieces("你好。" * 120))


@pytest.mark.parametrize("text", ["x" * 700, "word " * 500])
def test_text_without_sentences_is_cut_within_the_limit(text: str) -> None:
    parts = pieces(text.strip())
    assert all(0 < len(part) <= MAX_PIECE_CHARS for part in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")


@given(
    st.lists(st.sampled_from(["a", "bb", "ccc.", "dd,", "e!", "f?", '"g."', "h" * 40, "i;"]), min_size=1, max_size=300)
)
def test_nothing_is_lost_and_nothing_is_over_the_limit(words: list[str]) -> None:
    text = " ".join(words)
    parts = pieces(text)
    assert all(0 < len(part) <= MAX_PIECE_CHARS for part in parts)
    assert "".join(text.split()) == "".join("".join(parts).split())


def test_a_stream_speaks_sentence_by_sentence_short_ones_alone() -> None:
    assert sentences('Hello there. Is it? "Yes." Fine… ok') == ["Hello there.", "Is it?", '"Yes."', "Fine…", "ok"]
    long = ", ".join(f"clause {n} of a long sentence" for n in range(40)) + "."
    assert sentences(f"Hi. {long}") == ["Hi.", *pieces(long)]
