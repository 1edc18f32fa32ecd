"""What text the API takes: the constrained field types the request bodies and forms share, so every route
refuses the same bad values alike, and the checks for text that arrives outside a body (headers kept with a
record, the headers of form parts).

No text may hold a NUL character (U+0000): PostgreSQL's `text` and `jsonb` cannot store one, and psycopg
refuses to send it, so a NUL that got past the request's checks would fail the write as a server error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Annotated, Final
from urllib.parse import urlsplit

import msgspec

from backend.errors import ValidationFailed

#: A BCP 47 language tag such as `en`, `en-US` or `zh-Hans-CN`.
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
#: Any text without a NUL character.
NO_NUL: Final = r"^[^\x00]*$"
#: Text without a NUL character that has at least one character that is not whitespace.
NOT_BLANK: Final = r"^\s*[^\s\x00][^\x00]*$"
#: Text without a NUL character that neither starts nor ends with whitespace (a URL: refused, not stripped, so
#: what is stored is what was sent). `(?!\n)`: `$` alone also matches before a final newline.
TRIMMED: Final = r"^[^\s\x00](?:[^\x00]*[^\s\x00])?$(?!\n)"
#: A name shown in the studio: not blank, and no control character (C0, DEL or C1: no tab, newline or NUL).
NO_CONTROL: Final = r"^ *[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
#: Longest text to speak, or transcript of a sample.
MAX_TEXT_CHARS: Final = 5000

#: A name a person gave: at least one character that is not whitespace (names are stored stripped, and
#: the tables refuse a blank one).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]
#: A name of a voice or a sample a person gives in the studio: a `Name` that holds no control character.
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_CONTROL)]
LanguageTag = Annotated[str, msgspec.Meta(pattern=LANGUAGE, max_length=35)]
#: Text to speak, or what a sample says.
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_CHARS, pattern=NO_NUL)]


class Rename(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `PATCH` on a voice or a sample: its new name (stored without surrounding spaces)."""

    name: Label


#: What the API says about a value that breaks one of the patterns above.
PATTERN_WORDS: Final = {
    NO_NUL: "must not contain a NUL character (U+0000)",
    NOT_BLANK: "must not be blank or contain a NUL character (U+0000)",
    TRIMMED: "must not start or end with whitespace, or contain a NUL character (U+0000)",
    NO_CONTROL: "must not be blank or contain a control character (a NUL character (U+0000), a tab, a newline...)",
}

#: Longest Host header: a DNS name of 253 characters (RFC 1035, in its dotted form) and a port.
_MAX_HOST_BYTES: Final = 253 + len(":65535")
_MAX_LABEL_CHARS: Final = 63
# RFC 9110's Host: a reg-name, an IPv4 address or a bracketed IP literal, then an optional port.
_HOST = re.compile(r"(?:[0-9A-Za-z!$&'()*+,;=\-._~%]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")


def holds_nul(value: object) -> bool:
    """Whether `value` (text, or JSON made of dicts, lists and scalars) holds a NUL character anywhere."""
    return nul_field(value, "") is not None


def nul_field(value: object, at: str) -> str | None:
    """Where in `value` (text, or JSON made of dicts, lists and scalars) a NUL character first is, as a path
    from `at` (`body/paths/0`; for one in a property's name, that property's path with the NUL shown as
    `\\u0000`), or None when it holds none."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            field = f"{at}/{key}"
            if isinstance(key, str) and "\x00" in key:
                return field.replace("\x00", "\\u0000")
            if (found := nul_field(item, field)) is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            if (found := nul_field(item, f"{at}/{index}")) is not None:
                return found
    return None


def refuse_nul(field: str, value: str | None) -> None:
    """Raise ValidationFailed naming `field` when `value` holds a NUL character."""
    if value is not None and holds_nul(value):
        raise ValidationFailed(f"{field}: {PATTERN_WORDS[NO_NUL]}")


def valid_host(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's (ASGI) headers hold at most one Host header, and it is a host with an optional
    port that a URL can be built from: Litestar builds `request.url` from it, and fails on a port that
    is not a number in 0-65535 or an IP literal that is not one."""
    hosts = [value for name, value in headers if name == b"host"]
    if not hosts:
        return True
    return len(hosts) == 1 and _valid_host(hosts[0])


@functools.lru_cache(maxsize=256)
def _valid_host(host: bytes) -> bool:
    """`valid_host` of one Host header's value: kept, as a server is asked for the same few hosts every
    request (bounded, as a client may name any)."""
    if not host or len(host) > _MAX_HOST_BYTES:
        return False
    text = host.decode("latin-1")
    if not _HOST.fullmatch(text):
        return False
    try:
        parts = urlsplit(f"//{text}")
        parts.port  # noqa: B018 - read for the ValueError it raises on a bad IP literal or port
    except ValueError:
        return False
    name = parts.hostname or ""
    # A DNS name's labels are at most 63 octets (RFC 1035 §2.3.4); an IP literal has none that long.
    return all(len(label) <= _MAX_LABEL_CHARS for label in name.split("."))
