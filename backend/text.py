"""Text cut into the pieces a job speaks one at a time: sentences, with runs of short ones kept together
and an over-long one cut at a comma or a space, so progress moves and no provider call is huge."""

from __future__ import annotations

import re
from typing import Final

from backend.errors import ValidationFailed

#: The longest piece sent to a provider in one call (a few sentences; every provider takes far more).
MAX_PIECE_CHARS: Final = 300
# A sentence ends at . ! ? or an ellipsis (with any closing quote or bracket) before a space; at a CJK
# full stop, with or without one. The space is the gap between sentences.
_SENTENCE_END = re.compile("(?P<end>[.!?\u2026][\"'\u201d\u2019)\\]]*)\\s+|(?P<cjk>[\u3002\uff01\uff1f])\\s*")
_SOFT_BREAK = re.compile("(?<=[,;:\uff0c\u3001])\\s*|\\s+")
_COMMAS = ",;:\uff0c\u3001"


def cleaned(text: str) -> str:
    """`text` stripped; ValidationFailed when nothing is left to speak."""
    stripped = text.strip()
    if not stripped:
        raise ValidationFailed("text must not be blank")
    return stripped


def pieces(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """`text` (already stripped, non-empty) in speaking order, each piece at most `limit` characters."""
    out: list[str] = []
    for chunk in sentences(text, limit):
        if out and len(out[-1]) + 1 + len(chunk) <= limit:
            out[-1] = f"{out[-1]} {chunk}"
        else:
            out.append(chunk)
    return out


def sentences(text: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """`text` (already stripped, non-empty) sentence by sentence, short ones alone (what a stream speaks
    first should be short), one over `limit` characters cut at a comma or a space."""
    return [chunk for sentence in _sentences(text) for chunk in _cut(sentence, limit)]


def _sentences(text: str) -> list[str]:
    found, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end("end") if match["end"] else match.end("cjk")
        found.append(text[start:end].strip())
        start = match.end()
    found.append(text[start:].strip())
    return [sentence for sentence in found if sentence]


def _cut(sentence: str, limit: int) -> list[str]:
    """A sentence that fits as is, or cut at the last comma (else space) before the limit; words longer
    than the limit are cut where they stand."""
    chunks: list[str] = []
    while len(sentence) > limit:
        head = sentence[: limit + 1]
        breaks = [match.end() for match in _SOFT_BREAK.finditer(head) if 0 < match.start() <= limit]
        commas = [end for end in breaks if head[:end].rstrip()[-1:] in _COMMAS]
        cut = (commas or breaks or [limit])[-1]
        chunks.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*chunks, sentence] if sentence else chunks
