"""Sample uploads as multipart/form-data, streamed: the file part goes to a spooled temporary file
(memory up to a small threshold, then disk), counted and hashed on the way, and refused the moment it
passes the size limit. Only one sample is ever held, and never wholly in memory."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

import multipart  # type: ignore[import-untyped]  # Litestar's own dependency; ships no type hints
from litestar import Request

from backend.errors import SampleTooLarge, UnsupportedMediaType, ValidationFailed

#: Bytes of an upload kept in memory before it spills to a temporary file.
SPOOL_BYTES = 1024 * 1024
#: Bytes kept from the start of the file for sniffing.
HEAD_BYTES = 64
#: Longest accepted text field (a transcript is the longest).
MAX_FIELD_BYTES = 5000
#: Slack for the multipart framing around the file when checking Content-Length up front.
FRAMING_BYTES = 64 * 1024


@dataclass
class ReceivedUpload:
    """The text fields and the one file of a multipart sample upload."""

    fields: dict[str, str]
    file: IO[bytes]
    size: int = 0
    sha256: str = ""
    filename: str | None = None
    declared_type: str | None = None
    head: bytes = b""
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    def close(self) -> None:
        """Delete the temporary file."""
        self.file.close()


async def receive_upload(
    request: Request[Any, Any, Any], *, max_bytes: int, file_field: str, text_fields: frozenset[str]
) -> ReceivedUpload:
    """Read a multipart body with exactly one file part named `file_field` and text fields from
    `text_fields`. 415 for another content type, 413 past `max_bytes`, 400 for a malformed body or an
    unknown field, 422 without the file. The caller closes the result."""
    content_type = request.headers.get("content-type", "")
    kind, options = multipart.parse_options_header(content_type)
    if kind != "multipart/form-data" or not options.get("boundary"):
        raise UnsupportedMediaType("Send the sample as multipart/form-data with a `file` part.")
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > max_bytes + FRAMING_BYTES:
        raise SampleTooLarge(f"The upload is {announced} bytes; samples may be at most {max_bytes} bytes.")
    upload = ReceivedUpload(fields={}, file=tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115 - closed by the caller
    try:
        reader = _FormReader(upload, max_bytes, file_field, text_fields)
        with multipart.PushMultipartParser(options["boundary"], max_segment_count=len(text_fields) + 2) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    reader.feed(event)
    except multipart.MultipartError as exc:
        upload.close()
        raise ValidationFailed(f"Malformed multipart body: {exc}") from exc
    except BaseException:
        upload.close()
        raise
    if not reader.saw_file:
        upload.close()
        raise ValidationFailed(f"The `{file_field}` part with the audio is missing.")
    upload.sha256 = upload._hash.hexdigest()
    upload.file.seek(0)
    return upload


class _FormReader:
    """Consumes parser events: the file part streams into the upload, text fields are collected."""

    def __init__(self, upload: ReceivedUpload, max_bytes: int, file_field: str, text_fields: frozenset[str]) -> None:
        self.upload = upload
        self.max_bytes = max_bytes
        self.file_field = file_field
        self.text_fields = text_fields
        self.saw_file = False
        self._part: str | None = None
        self._text = bytearray()

    def feed(self, event: Any) -> None:
        if isinstance(event, multipart.MultipartSegment):
            self._start(event)
        elif event is None:
            self._end()
        elif self._part == self.file_field:
            self._file_chunk(event)
        else:
            self._text += event
            if len(self._text) > MAX_FIELD_BYTES:
                raise ValidationFailed(f"The `{self._part}` field is longer than {MAX_FIELD_BYTES} bytes.")

    def _start(self, segment: Any) -> None:
        name = segment.name
        if name == self.file_field:
            if self.saw_file:
                raise ValidationFailed(f"Send exactly one `{self.file_field}` part.")
            self.saw_file = True
            self.upload.filename = segment.filename
            self.upload.declared_type = segment.content_type
        elif name not in self.text_fields:
            allowed = ", ".join(sorted({self.file_field, *self.text_fields}))
            raise ValidationFailed(f"Unknown form field {name!r}; allowed: {allowed}.")
        elif name in self.upload.fields:
            raise ValidationFailed(f"The `{name}` field is sent twice.")
        self._part = name
        self._text.clear()

    def _end(self) -> None:
        if self._part is not None and self._part != self.file_field:
            try:
                self.upload.fields[self._part] = self._text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationFailed(f"The `{self._part}` field is not UTF-8 text.") from exc
        self._part = None

    def _file_chunk(self, chunk: bytes) -> None:
        upload = self.upload
        upload.size += len(chunk)
        if upload.size > self.max_bytes:
            raise SampleTooLarge(f"The sample is larger than {self.max_bytes} bytes.")
        if len(upload.head) < HEAD_BYTES:
            upload.head += chunk[: HEAD_BYTES - len(upload.head)]
        upload._hash.update(chunk)
        upload.file.write(chunk)
