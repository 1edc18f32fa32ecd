"""The multipart forms the routes read: how large they may be, and the one-file form that a recording or a file to
check is sent as (a sample's form, with its text fields and a spooled file, is `backend.http.routes.samples`')."""

from __future__ import annotations

from typing import Any, Final

from litestar import Request

from backend.errors import SampleTooLarge, UnsupportedMediaType, ValidationFailed
from backend.multipart import FormError, Part, form_boundary, read_form

#: The form field a file is sent in.
FILE_FIELD: Final = "file"
#: The largest sample accepted by any bucket or provider (voice-samples is 25 MiB).
MAX_SAMPLE_BYTES: Final = 25 * 1024 * 1024
#: Slack for the multipart framing around the file when checking Content-Length up front.
FRAMING_BYTES: Final = 64 * 1024
#: The most bytes an upload of one sample may announce (`backend.body_limit.BODY_LIMIT`).
UPLOAD_BYTES: Final = MAX_SAMPLE_BYTES + FRAMING_BYTES


async def one_file(request: Request[Any, Any, Any], *, limit: int, what: str) -> bytes:
    """The one `file` part of a multipart body, held in memory: 415 for another content type, 413 past `limit`
    bytes, 400 for anything else in it; `what` names the file in those answers ("the recording")."""
    boundary = form_boundary(request.headers.get("content-type"))
    if boundary is None:
        raise UnsupportedMediaType(f"Send {what} as multipart/form-data with a `{FILE_FIELD}` part.")
    reader = _OneFile(limit, what)
    try:
        await read_form(request.stream(), boundary, reader, max_parts=1, max_field_bytes=0)
    except FormError as exc:
        raise ValidationFailed(str(exc)) from exc
    if not reader.seen:
        raise ValidationFailed(f"The `{FILE_FIELD}` part with {what} is missing.")
    return bytes(reader.data)


class _OneFile:
    """The form's one file part, held in memory up to `limit` bytes; any other part is refused."""

    def __init__(self, limit: int, what: str) -> None:
        self.data = bytearray()
        self.seen = False
        self._limit = limit
        self._what = what

    def start(self, part: Part) -> bool:
        if part.name != FILE_FIELD:
            raise ValidationFailed(f"Unknown form field {part.name!r}; send only `{FILE_FIELD}`.")
        self.seen = True
        return True

    async def file_chunk(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self._limit:
            raise SampleTooLarge(f"{self._what.capitalize()} is larger than {self._limit} bytes.")
        self.data += chunk

    def field(self, name: str, value: bytes) -> None:
        raise ValidationFailed(f"Unknown form field {name!r}; send only `{FILE_FIELD}`.")
