"""The multipart sample upload that `POST /api/v1/voice-samples` and `POST /v1/reflections/{id}/voice/clone`
both take: one `file` part and the text fields of a `SampleForm`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request

from backend.domain.samples import SampleForm
from backend.errors import ValidationFailed
from backend.idempotency import body_fingerprint
from backend.routes.clone import LanguageTag, Name
from backend.uploads import ReceivedUpload, receive_upload

#: The largest sample accepted by any bucket or provider (voice-samples is 25 MiB).
MAX_SAMPLE_BYTES = 25 * 1024 * 1024
ProviderName = Literal["local", "qwen", "elevenlabs", "cartesia"]


class SampleFields(msgspec.Struct, forbid_unknown_fields=True):
    """Text fields of a multipart sample upload (besides the `file` part)."""

    consent: bool = False
    name: Name | None = None
    language: LanguageTag | None = None
    transcript: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)] | None = None
    provider: ProviderName | None = None
    subject_name: Name | None = None


SAMPLE_FIELDS = frozenset(SampleFields.__struct_fields__)


@dataclass(frozen=True)
class SampleUpload:
    """A received sample: the spooled file, the form, and what identifies the request for an
    Idempotency-Key (the same fields and the same file bytes, by hash, are the same request)."""

    upload: ReceivedUpload
    form: SampleForm
    fingerprint: str


@asynccontextmanager
async def sample_upload(request: Request[Any, Any, Any]) -> AsyncIterator[SampleUpload]:
    """Stream the multipart body (413 past `MAX_SAMPLE_BYTES`, 400 for a bad or unknown field); the
    spooled file is deleted on exit."""
    upload = await receive_upload(request, max_bytes=MAX_SAMPLE_BYTES, file_field="file", text_fields=SAMPLE_FIELDS)
    try:
        try:
            fields = msgspec.convert(upload.fields, SampleFields, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(str(exc)) from exc
        form = SampleForm(
            consent=fields.consent,
            name=fields.name.strip() if fields.name else None,
            language=fields.language,
            transcript=fields.transcript,
            provider=fields.provider,
            subject_name=fields.subject_name,
            user_agent=request.headers.get("user-agent"),
            client_ip=request.client.host if request.client else None,
        )
        fingerprint = body_fingerprint(msgspec.json.encode({"fields": upload.fields, "file": upload.sha256}))
        yield SampleUpload(upload, form, fingerprint)
    finally:
        upload.close()
