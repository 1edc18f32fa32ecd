"""JSON from a request, checked before it is decoded: a body that is not UTF-8, or that nests containers deeper
than MAX_DEPTH, is refused as InvalidJson instead of failing inside the decoder.

Both would otherwise be server errors: msgspec (and the json module) decode nested containers by recursion
and raise RecursionError somewhere past a few hundred levels, how far depending on how deep the caller's own
stack already is, and msgspec raises UnicodeDecodeError, not a DecodeError, for bytes that are not UTF-8
inside a string. No body voicegate or the Storage stand-in reads nests more than four levels, so MAX_DEPTH
leaves room for any client while keeping every recursive walk of a decoded body (msgspec's conversion to a
Struct, `backend.fields.holds_nul`) far from Python's recursion limit.
"""

from __future__ import annotations

from itertools import accumulate, repeat
from operator import gt, mul, sub, xor
from typing import Any, Final

import msgspec

from backend.errors import InvalidJson

#: Most containers (objects and arrays) a JSON body may have open at once: `[[1]]` nests 2 deep, `{"a": [1]}` 2.
MAX_DEPTH: Final = 64

# The structure left once escapes are gone: quotes and brackets, `{` and `}` counted as `[` and `]`.
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
# Per structural byte: 1 for a quote (it toggles "inside a string"), and 1 + the depth change (2 for `[`, 0 for
# `]`, 1 for a quote), as bytes.translate can only map bytes to bytes (0-255), never to -1.
_QUOTES = bytes.maketrans(b'"[]', b"\x01\x00\x00")
_ONE_PLUS_STEP = bytes.maketrans(b'"[]', b"\x01\x02\x00")


def read_json(body: bytes) -> Any:
    """`body` decoded as JSON (dicts, lists, scalars) after `check_json`; InvalidJson when it is not JSON."""
    check_json(body)
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None


def check_json(body: bytes) -> None:
    """Raise InvalidJson, naming the problem, when `body` is not UTF-8 or nests deeper than MAX_DEPTH.

    Linear in the body's size and decodes nothing: an ASCII body (what clients send unless they write
    non-ASCII text unescaped) is known to be UTF-8 at a glance, and a body with at most MAX_DEPTH opening
    brackets in all cannot nest deeper, so only a body with many brackets is scanned."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJson(f"the body is not UTF-8 text (byte {exc.start} is not part of a character)") from None
    if _nests_deeper(body, MAX_DEPTH):
        raise InvalidJson(f"the body nests objects and arrays more than {MAX_DEPTH} deep")


def _nests_deeper(body: bytes, limit: int) -> bool:
    """Whether, somewhere in `body`, more than `limit` objects and arrays are open at once.

    Brackets inside strings do not count. Each step runs in C over the body (bytes methods and itertools), with
    no object made per string or per bracket, so a body costs time and memory in proportion to its size: at
    worst 10 MB (Litestar's default body limit) of brackets and quoted brackets in about 0.5 s, where a list of
    10 MB of small objects or arrays takes 0.15-0.4 s, 0.2-1.9 s to decode. For malformed JSON the answer may
    differ from a decoder's (an unmatched `]` lowers the count where a decoder would stop), which only matters
    for a body the decoder refuses anyway."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # An escaped backslash first, then an escaped quote: what is left of each string is its two quotes and any
    # brackets it holds, so a byte is inside a string exactly when an odd number of quotes come before it.
    # Two quotes side by side (an empty string, or one string's end and the next one's start) can go: that
    # moves no byte into or out of a string. What is left has quotes only around strings that hold brackets.
    structure = (
        body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(_AS_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    )
    if structure.count(b"[") <= limit:
        return False
    if b'"' in structure:
        inside = accumulate(structure.translate(_QUOTES), xor)
        steps = map(sub, structure.translate(_ONE_PLUS_STEP), repeat(1))
        depths = accumulate(map(mul, steps, map(xor, inside, repeat(1))))
    else:
        # `[` is 0x5B and `]` 0x5D: 0x5C minus the byte is the step.
        depths = accumulate(map(sub, repeat(0x5C), structure))
    return any(map(gt, depths, repeat(limit)))
