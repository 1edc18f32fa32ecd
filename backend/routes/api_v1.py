"""The PRD routes (`/api/v1/...`): upload a sample, follow its check, delete it; speak text with the
voice cloned from it (or with a voice), follow the job, fetch the audio."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import Body, FromPath

from backend.domain import samples, synthesis
from backend.idempotency import idempotent
from backend.routes.context import current_user, pool_of, user_scope
from backend.routes.sample_upload import sample_upload


class VoiceSamplesController(Controller):
    """Samples uploaded on their own, checked on the `voice_sample_process` queue."""

    path = "/api/v1/voice-samples"
    tags = ("samples",)

    @post(
        "/",
        status_code=202,
        request_max_body_size=None,
        summary="Upload a voice sample (multipart: file, consent, language, transcript, provider)",
    )
    async def upload(self, request: Request[Any, Any, Any]) -> Response[samples.SampleAccepted]:
        """Stream the sample to Storage and queue its check (consent required); 202 {sampleId}.

        With an `Idempotency-Key`, the same fields and file replay the first 202.
        """
        claims = await current_user(request)
        state, pool = request.app.state, pool_of(request)
        async with sample_upload(request) as received:
            return await idempotent(
                request,
                claims,
                lambda record: samples.upload_sample(
                    pool,
                    state.storage,
                    claims,
                    form=received.form,
                    upload=received.upload,
                    providers=state.settings.providers,
                    retention_days=state.settings.sample_retention_days,
                    record=record,
                ),
                fingerprint=received.fingerprint,
            )

    @get("/", summary="List the caller's samples, newest first (at most 200)")
    async def list_all(self, request: Request[Any, Any, Any]) -> samples.SampleList:
        """Each sample's status as `GET /{id}/status` gives it, so a client can show and delete them."""
        async with user_scope(request) as conn:
            return await samples.list_samples(conn)

    @get("/{sample_id:uuid}/status", summary="Where the sample's check got to, with its quality report")
    async def status(self, request: Request[Any, Any, Any], sample_id: FromPath[uuid.UUID]) -> samples.SampleStatus:
        """`pending`, `processing`, `ready` (with the report) or `failed` (with the reason)."""
        async with user_scope(request) as conn:
            return await samples.sample_status(conn, sample_id)

    @delete("/{sample_id:uuid}", status_code=204, summary="Delete the sample and its stored audio now")
    async def remove(self, request: Request[Any, Any, Any], sample_id: FromPath[uuid.UUID]) -> None:
        """Purge the row, the original and the cleaned copy; an audit event records it."""
        claims = await current_user(request)
        await samples.delete_sample(pool_of(request), request.app.state.storage, claims, sample_id)


class CloneJobsController(Controller):
    """Text spoken in a cloned voice, on the `voice_synthesis` queue."""

    path = "/api/v1/clone"
    tags = ("synthesis",)

    @post("/", status_code=202, summary="Speak text with a voice, or with the voice cloned from a sample")
    async def create(
        self, request: Request[Any, Any, Any], data: Annotated[synthesis.CloneRequest, Body()]
    ) -> Response[synthesis.JobAccepted]:
        """`{sampleId or voiceId, text}` → 202 {jobId}; a sample without a voice is cloned first.

        With an `Idempotency-Key`, the same body replays the first 202.
        """
        claims = await current_user(request)
        pool, providers = pool_of(request), request.app.state.settings.providers
        return await idempotent(
            request,
            claims,
            lambda record: synthesis.create_job(pool, claims, data, providers=providers, record=record),
            body=msgspec.json.encode(data),
        )

    @get("/{job_id:uuid}/status", summary="Where the job got to")
    async def status(self, request: Request[Any, Any, Any], job_id: FromPath[uuid.UUID]) -> synthesis.JobStatus:
        """`queued`, `processing`, `succeeded` or `failed` (with the error)."""
        async with user_scope(request) as conn:
            return await synthesis.job_status(conn, job_id)

    @get("/{job_id:uuid}/result", summary="A short-lived URL of the job's audio (WAV)")
    async def result(self, request: Request[Any, Any, Any], job_id: FromPath[uuid.UUID]) -> synthesis.JobResult:
        """`{audioUrl}`, valid for a few minutes; 409 while the job runs or after it failed."""
        async with user_scope(request) as conn:
            return await synthesis.job_result(conn, request.app.state.storage, job_id)
