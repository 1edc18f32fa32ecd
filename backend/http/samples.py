"""`/api/v1/voice-samples`: upload a sample, follow its check, delete it."""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import JSONBody

from backend.fields import Rename
from backend.http.deps import Caller, PathId, Samples, sample_backlog_admits
from backend.http.docs import (
    BACKLOG,
    BY_ID,
    IDEMPOTENT,
    USER,
    USER_SECURITY,
    SampleUploadOperation,
    problems,
    with_examples,
)
from backend.http.gate import BODY_LIMIT
from backend.http.sample_upload import UPLOAD_BYTES, idempotent_upload
from backend.samples.types import SampleAccepted, SampleAudio, SampleList, SampleStatus


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
