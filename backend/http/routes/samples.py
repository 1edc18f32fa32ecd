"""`/api/v1/voice-samples`: upload a sample, follow its check, delete it; and the multipart sample upload that
`POST /api/v1/voice-samples` and `POST /v1/reflections/{id}/voice/clone` both take: one `file` part and the text
fields of a `SampleForm`, stored by the route's service at most once per `Idempotency-Key` (`idempotent_upload`).

The file part goes to a spooled temporary file (memory up to a small threshold, then disk), counted and
hashed on the way, and refused the moment it passes the size limit: only one sample is ever held, and
never wholly in memory.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Protocol, TypeVar

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import JSONBody

from backend.auth.verify import UserClaims
from backend.body_limit import BODY_LIMIT
from backend.db.units import Recorder
from backend.errors import SampleTooLarge, UnsupportedMediaType, ValidationFailed
from backend.fields import Rename
from backend.http.deps import Caller, PathId, Samples, request_origin, sample_backlog_admits
from backend.http.documents.openapi import (
    BACKLOG,
    BY_ID,
    IDEMPOTENT,
    USER,
    USER_SECURITY,
    SampleUploadOperation,
    problems,
    with_examples,
)
from backend.http.forms import FILE_FIELD, MAX_SAMPLE_BYTES, UPLOAD_BYTES
from backend.http.idempotency import body_fingerprint, idempotent
from backend.http.pipeline.problem import validation_message
from backend.multipart import FormError, Part, form_boundary, read_form
from backend.samples.types import SampleAccepted, SampleAudio, SampleList, SampleStatus
from backend.samples.upload import ReceivedUpload, SampleForm, SampleUpload

#: Bytes of an upload kept in memory before it spills to a temporary file.
SPOOL_BYTES = 1024 * 1024
#: Bytes kept from the start of the file for sniffing.
HEAD_BYTES = 64
#: Longest accepted text field (a transcript is the longest).
MAX_FIELD_BYTES = 5000
#: Longest Content-Type of the file part kept with the sample (`voice_samples.declared_type`).
MAX_DECLARED_TYPE_CHARS = 255


TEXT_FIELDS = frozenset(SampleForm.__struct_encode_fields__)
T_co = TypeVar("T_co", covariant=True)


class VoiceSamplesController(Controller):
    """Samples uploaded on their own, checked on the `voice_sample_process` queue."""

    path = "/api/v1/voice-samples"
    tags = ("samples",)
    security = USER_SECURITY

    @post(
        "/",
        status_code=202,
        request_max_body_size=None,
        opt={BODY_LIMIT: UPLOAD_BYTES},
        summary="Upload a voice sample (multipart: file and consent, the rest optional)",
        operation_class=SampleUploadOperation,
        guards=[sample_backlog_admits],
        responses=problems(*USER, *IDEMPOTENT, 413, 415, words=BACKLOG),
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        samples: Samples,
    ) -> Response[SampleAccepted]:
        """Stream the sample to Storage and queue its check (consent required); 202 {sampleId}.

        With an `Idempotency-Key`, the same fields and file replay the first 202.
        """
        return await idempotent_upload(request, claims, partial(samples.upload_sample, claims))

    @get("/", summary="List the caller's samples, newest first (at most 200)", responses=problems(*USER))
    async def list_all(self, claims: Caller, samples: Samples) -> SampleList:
        """Each sample's status as `GET /{id}/status` gives it, so a client can show and delete them."""
        return await samples.list_samples(claims)

    @get(
        "/{sample_id:uuid}/status",
        summary="Where the sample's check got to, with its quality report",
        responses=problems(*BY_ID),
    )
    async def status(self, claims: Caller, samples: Samples, sample_id: PathId) -> SampleStatus:
        """`pending`, `processing`, `ready` (with the report) or `failed` (with the reason)."""
        return await samples.sample_status(claims, sample_id)

    @patch(
        "/{sample_id:uuid}",
        summary="Name or rename a sample",
        responses=problems(*BY_ID),
        operation_class=with_examples(a_name={"name": "Morning take"}),
    )
    async def rename(self, claims: Caller, samples: Samples, sample_id: PathId, data: JSONBody[Rename]) -> SampleStatus:
        """`{name}`: 1-200 characters, not blank, no control characters; the sample's status with its name."""
        return await samples.rename_sample(claims, sample_id, data)

    @get(
        "/{sample_id:uuid}/audio-url",
        summary="A short-lived URL to listen to the sample",
        responses=problems(*BY_ID, 409),
    )
    async def audio_url(self, claims: Caller, samples: Samples, sample_id: PathId) -> SampleAudio:
        """`{audioUrl, expiresIn, copy}`: the upload as it was sent (or its cleaned copy once the original was
        trimmed); 409 `stored_object_altered` for a file changed since voicegate stored it."""
        return await samples.sample_audio(claims, sample_id)

    @delete(
        "/{sample_id:uuid}/keep",
        summary="Withdraw the consent to keep the sample for re-enrolment; it is deleted now",
        responses=problems(*BY_ID, 409),
    )
    async def withdraw_keep(self, claims: Caller, samples: Samples, sample_id: PathId) -> None:
        """The withdrawal is recorded on the consent and the sample purged with it; 409 if it was not kept."""
        await samples.withdraw_keep(claims, sample_id)

    @delete("/{sample_id:uuid}", summary="Delete the sample and its stored audio now", responses=problems(*BY_ID, 409))
    async def remove(self, claims: Caller, samples: Samples, sample_id: PathId) -> None:
        """Purge the row, the original and the cleaned copy; an audit event records it."""
        await samples.delete_sample(claims, sample_id)


class StoreUpload(Protocol[T_co]):
    """A service storing a received sample: under `resource_id` (a new id when None), removing what an abandoned
    try of the same request stored under `abandoned_id`, calling `record` last in the transaction of its rows."""

    def __call__(
        self,
        received: SampleUpload,
        *,
        record: Recorder | None,
        resource_id: uuid.UUID | None,
        abandoned_id: uuid.UUID | None,
    ) -> Awaitable[T_co]: ...


async def idempotent_upload(
    request: Request[Any, Any, Any], claims: UserClaims, store: StoreUpload[T_co]
) -> Response[T_co]:
    """Receive the sample (`sample_upload`) and `store` it; with an `Idempotency-Key`, once: the same fields and
    file replay the first response, and a retry that takes over a dead try's claim stores under the claim's id."""
    async with sample_upload(request) as received:
        return await idempotent(
            request,
            claims,
            lambda claim: store(
                received,
                record=claim,
                resource_id=claim.resource_id if claim else None,
                abandoned_id=claim.abandoned_resource_id if claim else None,
            ),
            fingerprint=received.fingerprint,
        )


@asynccontextmanager
async def sample_upload(request: Request[Any, Any, Any]) -> AsyncIterator[SampleUpload]:
    """Stream the multipart body (415 for another content type, 413 past `MAX_SAMPLE_BYTES`, 400 for a
    malformed body or a bad or unknown field); the spooled file is deleted on exit."""
    origin = request_origin(request)
    upload = await _receive(request)
    try:
        # An HTML form sends every field, empty ones as "": an empty optional field is an absent one.
        given = {name: value for name, value in upload.fields.items() if value != ""}
        try:
            form = msgspec.convert(given, SampleForm, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(validation_message(str(exc))) from exc
        if form.name:
            form = msgspec.structs.replace(form, name=form.name.strip())
        fingerprint = body_fingerprint(msgspec.json.encode({"fields": upload.fields, "file": upload.sha256}))
        yield SampleUpload(upload, form, origin, fingerprint)
    finally:
        upload.close()


async def _receive(request: Request[Any, Any, Any]) -> ReceivedUpload:
    boundary = form_boundary(request.headers.get("content-type"))
    if boundary is None:
        raise UnsupportedMediaType(f"Send the sample as multipart/form-data with a `{FILE_FIELD}` part.")
    upload = ReceivedUpload(fields={}, file=tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115 - closed by the caller
    reader = _SampleForm(upload)
    try:
        await read_form(
            request.stream(), boundary, reader, max_parts=len(TEXT_FIELDS) + 2, max_field_bytes=MAX_FIELD_BYTES
        )
    except FormError as exc:
        upload.close()
        raise ValidationFailed(str(exc)) from exc
    except BaseException:
        upload.close()
        raise
    if not reader.saw_file:
        upload.close()
        raise ValidationFailed(f"The `{FILE_FIELD}` part with the audio is missing.")
    upload.seal()
    return upload


class _SampleForm:
    """The file part streams into the upload; text fields must be known, sent once, and UTF-8."""

    def __init__(self, upload: ReceivedUpload) -> None:
        self.upload = upload
        self.saw_file = False

    def start(self, part: Part) -> bool:
        if part.name == FILE_FIELD:
            if self.saw_file:
                raise ValidationFailed(f"Send exactly one `{FILE_FIELD}` part.")
            self.saw_file = True
            if len(part.content_type or "") > MAX_DECLARED_TYPE_CHARS:
                raise ValidationFailed(
                    f"Content-Type of the `{FILE_FIELD}` part: at most {MAX_DECLARED_TYPE_CHARS} characters"
                )
            self.upload.filename = part.filename
            self.upload.declared_type = part.content_type
            return True
        if part.name not in TEXT_FIELDS:
            allowed = ", ".join(sorted({FILE_FIELD, *TEXT_FIELDS}))
            raise ValidationFailed(f"Unknown form field {part.name!r}; allowed: {allowed}.")
        if part.name in self.upload.fields:
            raise ValidationFailed(f"The `{part.name}` field is sent twice.")
        return False

    async def file_chunk(self, chunk: bytes) -> None:
        if self.upload.size + len(chunk) > MAX_SAMPLE_BYTES:
            raise SampleTooLarge(f"The sample is larger than {MAX_SAMPLE_BYTES} bytes.")
        self.upload.write(chunk, head_bytes=HEAD_BYTES)

    def field(self, name: str, value: bytes) -> None:
        try:
            self.upload.fields[name] = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"The `{name}` field is not UTF-8 text.") from exc
