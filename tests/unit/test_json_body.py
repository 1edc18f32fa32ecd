"""A JSON body is checked for its encoding and depth before it is decoded: too deep or not UTF-8 is an
InvalidJson naming which, never a RecursionError or UnicodeDecodeError out of the decoder."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidJson
from backend.json_body import MAX_DEPTH, _nests_deeper, check_json, read_json


def nested(depth: int, *, opening: bytes = b"[", closing: bytes = b"]", inner: bytes = b"1") -> bytes:
    return opening * depth + inner + closing * depth


def walk(body: bytes) -> tuple[int, bool]:
    """The reference, byte by byte as a decoder reads: the most containers open at once (a stray closing
    bracket counts down, as the scan does), and whether the body holds no backslash outside a string."""
    depth = most = 0
    in_string = escaped = False
    clean = True
    for char in body.decode():
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            most = max(most, depth)
        elif char in "]}":
            depth -= 1
        elif char == "\\":
            clean = False
    return most, clean


@pytest.mark.parametrize(
    "body",
    [
        nested(MAX_DEPTH),
        b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH,
        # Brackets inside strings are text, however many, escaped quotes and backslashes around them or not.
        b'["' + b"[" * 1000 + b'"]',
        b'{"a\\"[[[[": "\\\\' + b"{" * 1000 + b'"}',
        # Wide is not deep: many containers side by side.
        b"[" + b"[[]]," * 10_000 + b"1]",
        '{"name": "Zoë ünïcode ✓ 声"}'.encode(),
    ],
    ids=["64 arrays", "64 objects", "brackets in a string", "escapes", "wide", "non-ASCII UTF-8"],
)
def test_bodies_within_the_limits_pass_and_decode(body: bytes) -> None:
    check_json(body)
    assert read_json(body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        nested(MAX_DEPTH + 1),
        b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
        b"[" + b"{" * (MAX_DEPTH // 2) + b'"[": ' + b"[" * (MAX_DEPTH // 2 + 1) + b"]",
        # What crashed the decoder (issue 45): 10,000 deep, closed or not.
        nested(10_000),
        b"[" * 10_000,
        # An escaped backslash ends before the quote: the string closes there, the brackets after it count.
        b'["\\\\",' + b"[" * 100,
    ],
    ids=["65 arrays", "65 objects", "mixed", "10,000 deep", "10,000 unclosed", "after an escaped backslash"],
)
def test_a_body_nested_deeper_than_the_limit_is_refused_before_it_is_decoded(body: bytes) -> None:
    with pytest.raises(InvalidJson) as refused:
        read_json(body)
    assert refused.value.detail == f"the body nests objects and arrays more than {MAX_DEPTH} deep"
    assert (refused.value.status, refused.value.code) == (400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "byte"),
    [(b'{"name": "\xff"}', 10), (b'{"name": "ok"}\xc3', 14), (b'{"name": "\xed\xa0\x80"}', 10)],
    ids=["0xff", "cut short", "a surrogate's bytes"],
)
def test_a_body_that_is_not_utf8_is_refused_naming_the_byte(body: bytes, byte: int) -> None:
    with pytest.raises(InvalidJson) as refused:
        read_json(body)
    assert refused.value.detail == f"the body is not UTF-8 text (byte {byte} is not part of a character)"


def test_malformed_json_is_an_invalid_json_saying_why() -> None:
    with pytest.raises(InvalidJson) as refused:
        read_json(b'{"name": "a"} x')
    assert refused.value.detail == "the body is not valid JSON: JSON is malformed: trailing characters (byte 15)"


def test_the_decoder_would_have_crashed_on_what_is_refused() -> None:
    """The limit is not moot: the bodies it refuses do crash the decoders, here at a depth below
    Python's recursion limit would not."""
    body = nested(10 * sys.getrecursionlimit())
    with pytest.raises(RecursionError):
        json.loads(body)
    with pytest.raises(InvalidJson):
        check_json(body)


_JSONISH = st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b","]), max_size=400)


@settings(max_examples=1000)
@given(_JSONISH, st.integers(min_value=0, max_value=12))
def test_the_depth_is_the_one_a_decoder_walks(parts: list[bytes], limit: int) -> None:
    """On any mix of brackets, quotes and escapes, valid JSON or not, the scan agrees with walking the body
    byte by byte. A backslash outside a string is left out: the scan drops escapes wherever they stand, and a
    decoder stops at one there anyway."""
    body = b"".join(parts)
    most, clean = walk(body)
    if clean:
        assert _nests_deeper(body, limit) is (most > limit)
