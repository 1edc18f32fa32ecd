"""Split a migration file into statements the way the Supabase CLI does before `db push`.

The CLI (supabase/cli pkg/parser) cuts the text at every `;` that is not inside a quote, a comment,
a dollar-quoted body, parentheses or a `BEGIN ATOMIC ... END` body, keeps comments and whitespace
inside each piece, then trims trailing semicolons and surrounding whitespace and drops empty pieces.
Each statement then runs on its own through the extended protocol and is stored as one element of
`supabase_migrations.schema_migrations.statements`. Written from that behaviour, not from its code;
unlike the CLI, parentheses nest and `END` must be a whole word.
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_BEGIN_ATOMIC = re.compile(r"begin\s+atomic\b", re.IGNORECASE)


class UnterminatedSQLError(ValueError):
    """A quote, comment or body is still open at the end of the text."""


def split_raw(text: str) -> list[str]:
    """Cut `text` after each top-level `;`. Lossless: the pieces joined give `text` back."""
    pieces: list[str] = []
    start = i = depth = 0  # depth: open parentheses
    atomic: list[int] = []  # per open BEGIN ATOMIC body: the CASE expressions open inside it
    while i < len(text):
        ch = text[i]
        skipped = _skip_opaque(text, i)
        if skipped is not None:
            i = skipped
        elif ch in "()":
            depth = max(depth + (1 if ch == "(" else -1), 0)
            i += 1
        elif ch == ";" and depth == 0 and not atomic:
            pieces.append(text[start : i + 1])
            start = i = i + 1
        elif (word := _WORD.match(text, i)) and not _continues_word(text, i):
            i = _track_atomic(text, word, atomic)
        else:
            i += 1
    if atomic:
        raise UnterminatedSQLError("a BEGIN ATOMIC body is never closed with END")
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def trim(piece: str) -> str:
    """A piece as the CLI stores it: trailing semicolons, then surrounding whitespace, removed."""
    return piece.rstrip(";").strip()


def split_statements(text: str) -> list[str]:
    """The statements of `text`, each as the CLI runs and records it; empty pieces are dropped."""
    return [s for s in (trim(p) for p in split_raw(text)) if s]


def _skip_opaque(text: str, i: int) -> int | None:
    """Past the comment, quoted string, quoted identifier or dollar-quoted body starting at `i`, if any."""
    ch = text[i]
    if text.startswith("--", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end + 1
    if text.startswith("/*", i):
        return _skip_block_comment(text, i)
    if ch == "'":
        return _skip_quoted(text, i, "'", backslash=_is_escape_string(text, i))
    if ch == '"':
        return _skip_quoted(text, i, '"', backslash=False)
    if ch == "$" and not _continues_word(text, i) and (tag := _DOLLAR_TAG.match(text, i)):
        end = text.find(tag.group(), tag.end())
        if end < 0:
            raise UnterminatedSQLError(f"dollar quote {tag.group()} opened at offset {i} is never closed")
        return end + len(tag.group())
    return None


def _skip_block_comment(text: str, i: int) -> int:
    level = 0
    while i < len(text):
        if text.startswith("/*", i):
            level += 1
            i += 2
        elif text.startswith("*/", i):
            level -= 1
            i += 2
            if level == 0:
                return i
        else:
            i += 1
    raise UnterminatedSQLError("a /* comment is never closed")


def _skip_quoted(text: str, i: int, quote: str, *, backslash: bool) -> int:
    i += 1
    while i < len(text):
        ch = text[i]
        if backslash and ch == "\\":
            i += 2
        elif ch == quote:
            if text.startswith(quote, i + 1):  # a doubled quote stands for itself
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise UnterminatedSQLError(f"a {quote} quote is never closed")


def _is_escape_string(text: str, i: int) -> bool:
    return i > 0 and text[i - 1] in "eE" and not _continues_word(text, i - 1)


def _continues_word(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$")


def _track_atomic(text: str, word: re.Match[str], atomic: list[int]) -> int:
    """Open a BEGIN ATOMIC body, or count CASE/END inside one; returns where scanning resumes."""
    lowered = word.group().lower()
    if lowered == "begin" and (body := _BEGIN_ATOMIC.match(text, word.start())):
        atomic.append(0)
        return body.end()
    if atomic and lowered == "case":
        atomic[-1] += 1
    elif atomic and lowered == "end":
        if atomic[-1]:
            atomic[-1] -= 1
        else:
            atomic.pop()
    return word.end()
