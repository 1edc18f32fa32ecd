"""Whisper's text tokenizer: byte-level BPE read from the model's `tokenizer.json`, without the `tokenizers` package
(which would bring huggingface-hub and a dozen packages into the process to encode one sentence).

A text is split as GPT-2 splits it (contractions, runs of letters, of digits, of other symbols, each with the space
before it, and runs of spaces), each piece's UTF-8 bytes are mapped to printable characters, and the pairs of
symbols in each piece are merged in the order of the file's merge list, the earliest first.

The weights' `tokenizer.json` (`Systran/faster-whisper-base`'s, as shipped) lacks the first merge of Whisper's list,
"Ġ t", which makes "Ġt": without it a word starting " t" is split in a way the model never writes, and its tokens
are improbable to it. ``Tokenizer.load`` puts it back in first place when it is missing.
"""

from __future__ import annotations

import itertools
import json
import re
from functools import cache
from typing import Final

#: The merge the shipped file lacks (see the module's docstring), rank 0 of Whisper's list.
FIRST_MERGE: Final = "Ġ t"
#: GPT-2's split: Python's `re` has no \p{L}; `[^\W\d_]` is a letter (a word character that is no digit nor "_"),
#: `\d` a decimal digit.
_SPLIT: Final = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


@cache
def _byte_symbols() -> tuple[str, ...]:
    """The printable character byte-level BPE writes for each byte value (GPT-2's table): the printable Latin-1
    characters stand for themselves, the other bytes for the characters from U+0100 up, in order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table: dict[int, str] = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in table:
            table[byte] = chr(256 + extra)
            extra += 1
    return tuple(table[byte] for byte in range(256))


class Tokenizer:
    """A text's token ids for Whisper: the vocabulary, the merges' ranks and the special tokens of one
    `tokenizer.json`."""

    def __init__(self, vocab: dict[str, int], merges: list[str], special: dict[str, int]) -> None:
        self._vocab = vocab
        self._tokens = {id_: token for token, id_ in vocab.items()}
        self._ranks = {tuple(merge.split(" ", 1)): rank for rank, merge in enumerate(merges)}
        self._special = special
        self._cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def load(cls, data: bytes) -> Tokenizer:
        """The tokenizer of a `tokenizer.json`'s bytes (a BPE model), its missing first merge put back.
        ``ValueError`` for a file that is not one."""
        document = json.loads(data)
        model = document.get("model") or {}
        if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
            raise ValueError("not a byte-level BPE tokenizer.json")
        merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model.get("merges", [])]
        if FIRST_MERGE not in merges:
            merges.insert(0, FIRST_MERGE)
        special = {token["content"]: int(token["id"]) for token in document.get("added_tokens", [])}
        return cls(dict(model["vocab"]), merges, special)

    def special(self, token: str) -> int:
        """The id of a special token, e.g. "<|startoftranscript|>"; ``KeyError`` for one the model lacks."""
        return self._special[token]

    def encode(self, text: str) -> list[int]:
        """``text``'s token ids (no special tokens added)."""
        return self.encode_words(text)[0]

    def encode_words(self, text: str) -> tuple[list[int], list[bool]]:
        """``text``'s token ids, as ``encode`` gives them, and for each whether it is of a word: of a piece of the
        split with a letter or a digit in it, not of one of punctuation, symbols or spaces alone (the split never
        puts a letter and a comma in one piece, so no token is of both)."""
        symbols = _byte_symbols()
        ids: list[int] = []
        words: list[bool] = []
        for piece in _SPLIT.findall(text):
            tokens = self._piece("".join(symbols[byte] for byte in piece.encode()))
            ids.extend(tokens)
            words.extend([any(char.isalnum() for char in piece)] * len(tokens))
        return ids, words

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids``, special tokens left out; bytes that do not make UTF-8 (a character cut between
        tokens) as U+FFFD."""
        values = {symbol: byte for byte, symbol in enumerate(_byte_symbols())}
        special = set(self._special.values())
        pieces = "".join(self._tokens.get(id_, "") for id_ in ids if id_ not in special)
        return bytes(values[symbol] for symbol in pieces if symbol in values).decode(errors="replace")

    def _piece(self, piece: str) -> tuple[int, ...]:
        """One piece's ids, the piece written in byte symbols."""
        if (known := self._cache.get(piece)) is not None:
            return known
        parts = [*piece]
        while len(parts) > 1:
            pairs = [(self._ranks.get((a, b)), i) for i, (a, b) in enumerate(itertools.pairwise(parts))]
            ranked = [(rank, i) for rank, i in pairs if rank is not None]
            if not ranked:
                break
            rank = min(ranked)[0]
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and self._ranks.get((parts[i], parts[i + 1])) == rank:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = tuple(self._vocab[part] for part in parts)
        if len(self._cache) < 4096:
            self._cache[piece] = ids
        return ids
