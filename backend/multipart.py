"""Streaming multipart/form-data: the one reader behind every upload (the sample routes and the embedded
Storage stand-in). Parts arrive as events; a file part's bytes go to the caller chunk by chunk, never
held whole, and text fields are collected up to a limit. The caller decides what each part is and what
its refusals say.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Protocol

import multipart  # type: ignore[import-untyped]  # Litestar's own dependency; ships no type hints

from backend.fields import NO_NUL, PATTERN_WORDS


class FormError(ValueError):
    """The body is not a well-formed form of the expected shape; the message says why and is safe to show."""


@dataclass(frozen=True)
class Part:
    """The headers of one part."""

    name: str
    filename: str | None
    content_type: str | None


class FormHandler(Protocol):
    """What a form's reader does with its parts."""

    def start(self, part: Part) -> bool:
        """A part begins: True when its body is a file (streamed to `file_chunk`), False for a text field
        (handed whole to `field`). Raise to refuse the part before any of its bytes are read."""
        ...

    async def file_chunk(self, chunk: bytes) -> None:
        """The next bytes of the current file part."""
        ...

    def field(self, name: str, value: bytes) -> None:
        """A complete text field."""
        ...


def form_boundary(content_type: str | None) -> str | None:
    """The boundary of a `multipart/form-data` content type, None for any other type or none given."""
    kind, options = multipart.parse_options_header(content_type or "")
    boundary = options.get("boundary")
    return boundary if kind == "multipart/form-data" and boundary else None


async def read_form(
    body: AsyncIterable[bytes], boundary: str, handler: FormHandler, *, max_parts: int, max_field_bytes: int
) -> None:
    """Parse `body` as it streams, feeding `handler`; FormError for a malformed body, more than
    `max_parts` parts, or a text field longer than `max_field_bytes`."""
    current: Part | None = None
    streaming_file = False
    text = bytearray()
    try:
        with multipart.PushMultipartParser(boundary, max_segment_count=max_parts) as parser:
            async for chunk in body:
                for event in parser.parse(chunk):
                    if isinstance(event, multipart.MultipartSegment):
                        current = _part(event)
                        streaming_file = handler.start(current)
                        text.clear()
                    elif event is None:
                        if current is not None and not streaming_file:
                            handler.field(current.name, bytes(text))
                        current = None
                    elif streaming_file:
                        await handler.file_chunk(event)
                    elif current is not None:
                        text += event
                        if len(text) > max_field_bytes:
                            raise FormError(f"The `{current.name}` field is longer than {max_field_bytes} bytes.")
    except multipart.MultipartError as exc:
        raise FormError(f"Malformed multipart body: {exc}") from exc


def _part(segment: multipart.MultipartSegment) -> Part:
    """The part's headers; FormError, naming the header, when one holds a NUL (Postgres text cannot keep one)."""
    part = Part(segment.name or "", segment.filename, segment.content_type)
    for header, value in (("name", part.name), ("filename", part.filename), ("Content-Type", part.content_type)):
        if value is not None and "\x00" in value:
            raise FormError(f"{header} of the `{part.name.replace(chr(0), '')}` part: {PATTERN_WORDS[NO_NUL]}")
    return part
