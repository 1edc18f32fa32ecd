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

import re
from typing import Any, Final

import msgspec
import numpy as np

from backend.errors import InvalidJson

#: Most containers (objects and arrays) a JSON body may have open at once: `[[1]]` nests 2 deep, `{"a": [1]}` 2.
MAX_DEPTH: Final = 64

#: A string, from its opening quote to its closing one (or to the end of a body that leaves it open), once its
#: escapes are gone.
_STRING = re.compile(rb'"[^"]*(?:"|\Z)')
# Brackets alone, `{` and `}` counted as `[` and `]`.
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")


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

    Brackets inside strings do not count. Every step runs in C over the body (bytes methods, one regular
    expression, a NumPy sum), with no Python object made per string or per bracket: a megabyte of brackets, in
    strings or not, takes a few milliseconds. For malformed JSON the answer may differ from a decoder's (an
    unmatched `]` lowers the count where a decoder would stop), which only matters for a body the decoder
    refuses anyway."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # An escaped backslash first, then an escaped quote: what is left of each string is its two quotes and what
    # it holds, so the strings (and one left open at the end) can go whole.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = _STRING.sub(b"", unescaped).translate(_AS_BRACKETS, _NOT_BRACKETS)
    if structure.count(b"[") <= limit:
        return False
    # `[` is 0x5B and `]` 0x5D: 0x5C minus the byte is the step, and the running sum the depth.
    steps = 0x5C - np.frombuffer(structure, dtype=np.uint8).astype(np.int32)
    return int(np.cumsum(steps).max()) > limit
