"""Speaking text in a cloned voice (`/api/v1/clone`): a job on the `voice_synthesis` queue, its status,
and its result as a short-lived signed URL of a WAV.

A job names the voice it speaks with. From a sample that has no voice yet, the voice and its clone
attempt are created with the job, in one transaction; the job then waits for that attempt, and the
attempt's end wakes it (a trigger on the attempt sends the job's message again). The routes' use cases are
`backend.synthesis.service.SynthesisService`'s methods.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from backend.auth.verify import UserClaims
from backend.db.units import Database
from backend.errors import (
    NotFound,
    SynthesisFailed,
    SynthesisNotFinished,
)
from backend.fields import Name, Text
from backend.provenance import PROVENANCE
from backend.records.synthesis_jobs import SynthesisJobRow, SynthesisJobStatus, job_row

#: How long a result URL works: long enough to fetch or stream the audio, short enough not to be shared.
RESULT_URL_SECONDS = 300


class CloneRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """`POST /api/v1/clone`: speak `text` with a voice, or with the voice cloned from a sample."""

    text: Text
    sample_id: uuid.UUID | None = None
    voice_id: uuid.UUID | None = None
    #: The name of a voice created from the sample (default: the sample's name, else "Voice from sample").
    name: Name | None = None


class JobAccepted(msgspec.Struct, rename="camel"):
    """`202` of `POST /api/v1/clone`."""

    job_id: uuid.UUID
    status: SynthesisJobStatus
    voice_id: uuid.UUID
    #: The clone attempt the job waits for; null when the voice was ready already.
    attempt_id: uuid.UUID | None


class JobError(msgspec.Struct):
    """Why a job failed: a stable code and a message safe to show."""

    code: str
    message: str | None


class JobProgress(msgspec.Struct):
    """How far a running job has got: `done` of `total` parts (a part is a sentence or a few short ones)."""

    done: int
    total: int
    unit: str = "parts"


class JobStatus(msgspec.Struct, rename="camel"):
    """A synthesis job as its owner sees it."""

    job_id: uuid.UUID
    status: SynthesisJobStatus
    voice_id: uuid.UUID
    sample_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    duration_ms: int | None
    error: JobError | None
    #: Parts spoken so far, from when a worker starts the job (null before).
    progress: JobProgress | None
    created_at: datetime
    finished_at: datetime | None
    #: `c2pa` once the job succeeded: its WAV carries a signed C2PA manifest (`voicegate verify FILE`).
    provenance: str | None = None


class JobResult(msgspec.Struct, rename="camel"):
    """Where to download a finished job's audio (a WAV with its C2PA manifest embedded)."""

    audio_url: str
    expires_in: int
    mime_type: str
    duration_ms: int | None
    provenance: str = PROVENANCE


async def finished_render(db: Database, claims: UserClaims, job_id: uuid.UUID) -> tuple[SynthesisJobRow, str, str]:
    """The caller's succeeded job with the bucket and path of its render; 404 for anyone else's, 409 while it
    runs (`synthesis_not_finished`), after it failed (`synthesis_failed`) or was canceled."""
    job = await owned_job(db, claims, job_id)
    if job.status is SynthesisJobStatus.FAILED:
        raise SynthesisFailed(f"The job failed ({job.error_code}): {job.error_message}")
    if job.status is not SynthesisJobStatus.SUCCEEDED or job.output_bucket_id is None or job.output_object_path is None:
        raise SynthesisNotFinished(f"The job is {job.status}; poll its status until it has succeeded.")
    return job, job.output_bucket_id, job.output_object_path


async def owned_job(db: Database, claims: UserClaims, job_id: uuid.UUID) -> SynthesisJobRow:
    """The caller's job row (RLS decides whose); 404 for anyone else's."""
    async with db.user_statement(claims.raw) as conn:
        job = await job_row(conn, job_id)
    if job is None:
        raise NotFound("Job not found.")
    return job
