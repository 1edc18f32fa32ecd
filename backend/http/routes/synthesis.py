"""`/api/v1/clone`: speak text with a voice (or with the voice cloned from a sample), follow the job,
fetch the audio (a signed URL, or the WAV or MP3 itself), cancel a job or delete it."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import JSONBody, QueryParameter

from backend.http.deps import Caller, PathId, Synthesis
from backend.http.documents.openapi import (
    BY_ID,
    IDEMPOTENT,
    SPENDS_JOBS,
    USER_SECURITY,
    VOICE,
    ClipAudioOperation,
    IdempotentOperation,
    audio_label,
    problems,
    with_examples,
)
from backend.http.idempotency import idempotent
from backend.synthesis import types
from backend.usage.job_admission import QUEUES_JOBS
from backend.usage.ledger import Allowance


class SynthesisJobsController(Controller):
    """Text spoken in a cloned voice, on the `voice_synthesis` queue."""

    path = "/api/v1/clone"
    tags = ("synthesis",)
    security = USER_SECURITY

    @post(
        "/",
        status_code=202,
        summary="Speak text with a voice, or with the voice cloned from a sample",
        operation_class=with_examples(
            IdempotentOperation,
            # One of sampleId and voiceId: a body with both is refused.
            with_a_sample={
                "sampleId": "6bcc1f0e-2d4b-4c7a-9e15-0f8a3b2c1d40",
                "text": "Hello! This is my cloned voice speaking.",
            },
            with_a_voice={"voiceId": "9c1ab5e2-7e0d-4f4a-8d36-5b2c0f3e4a11", "text": "Hello again."},
        ),
        responses=problems(*BY_ID, *IDEMPOTENT, words=VOICE | SPENDS_JOBS),
        opt={QUEUES_JOBS: True},
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        synthesis: Synthesis,
        data: JSONBody[types.JobRequest],
    ) -> Response[types.JobAccepted]:
        """`{sampleId or voiceId, text}` → 202 {jobId}; a sample without a voice is cloned first.

        With an `Idempotency-Key`, the same body replays the first 202. The answer's `RateLimit` fields say
        what is left of the caller's characters this window.
        """
        seen: list[Allowance] = []
        response = await idempotent(
            request,
            claims,
            lambda record: synthesis.create_job(claims, data, record=record, seen=seen.append),
            body=msgspec.json.encode(data),
        )
        if seen:
            response.headers.update(seen[-1].headers())
        return response

    @get("/{job_id:uuid}/status", summary="Where the job got to", responses=problems(*BY_ID))
    async def status(self, claims: Caller, synthesis: Synthesis, job_id: PathId) -> types.JobStatus:
        """`queued`, `processing`, `succeeded` or `failed` (with the error)."""
        return await synthesis.job_status(claims, job_id)

    @get(
        "/{job_id:uuid}/result",
        summary="A short-lived URL of the job's audio (WAV)",
        responses=problems(*BY_ID, 409),
    )
    async def result(self, claims: Caller, synthesis: Synthesis, job_id: PathId) -> types.JobResult:
        """`{audioUrl}`, valid for a few minutes; 409 while the job runs, after it failed, or when its file
        has changed since voicegate stored it (`stored_object_altered`: never served)."""
        return await synthesis.job_result(claims, job_id)

    @get(
        "/{job_id:uuid}/audio",
        summary="The finished job's audio itself, as a WAV (with its C2PA manifest) or an MP3 download",
        operation_class=ClipAudioOperation,
        responses=problems(*BY_ID, 409),
    )
    async def audio(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        synthesis: Synthesis,
        job_id: PathId,
        audio_format: Annotated[types.ClipFormat, QueryParameter(name="format")] = "wav",
    ) -> Response[bytes]:
        """`?format=wav` (default) or `mp3` (24 kHz mono, 64 kbit/s, without the C2PA manifest), as an
        attachment (`application/octet-stream` when `Accept` prefers it); 409 as `/result` answers it."""
        clip = await synthesis.clip_audio(claims, job_id, fmt=audio_format)
        return Response(
            clip.data,
            media_type=audio_label(request.accept, clip.media_type),
            headers={"Content-Disposition": f'attachment; filename="{clip.filename}"', "Cache-Control": "private"},
        )

    @post(
        "/{job_id:uuid}/cancel",
        status_code=200,
        summary="Cancel a queued or running job",
        responses=problems(*BY_ID, 409),
    )
    async def cancel(self, claims: Caller, synthesis: Synthesis, job_id: PathId) -> types.JobStatus:
        """The job, now `canceled`: a run speaking it stops at its next part and stores nothing; 409
        `synthesis_ended` once it has ended."""
        return await synthesis.cancel_job(claims, job_id)

    @delete("/{job_id:uuid}", summary="Delete an ended job and its stored audio", responses=problems(*BY_ID, 409))
    async def remove(self, claims: Caller, synthesis: Synthesis, job_id: PathId) -> None:
        """The row, its render and the render's digest record go together (an audit event records it); 409
        `synthesis_not_finished` while the job is queued or running (cancel it first)."""
        await synthesis.delete_job(claims, job_id)
