"""Speaking text in a cloned voice (`/api/v1/clone`): a job on the `voice_synthesis` queue, its status,
and its result as a short-lived signed URL of a WAV.

A job names the voice it speaks with. From a sample that has no voice yet, the voice and its clone
attempt are created with the job, in one transaction; the job then waits for that attempt, and the
attempt's end wakes it (a trigger on the attempt sends the job's message again).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from backend.auth.verify import UserClaims
from backend.db.execute import fetch_one, fetch_optional
from backend.db.pool import Connection, become_service, user_transaction
from backend.db.queries import load_queries
from backend.domain.clone import provider_of
from backend.errors import (
    NotFound,
    ProviderNotConfigured,
    SampleRejected,
    SynthesisFailed,
    SynthesisNotFinished,
    ValidationFailed,
    VoiceNotReady,
)
from backend.lifecycle.attempts import enqueue
from backend.providers.config import ProviderSettings, key_variable
from backend.storage.client import ObjectStorage

if TYPE_CHECKING:
    from backend.idempotency import Recorder

Q = load_queries(Path(__file__).with_suffix(".sql"))
SYNTHESIS_QUEUE = "voice_synthesis"
#: How long a result URL works: long enough to fetch or stream the audio, short enough not to be shared.
RESULT_URL_SECONDS = 300
MAX_TEXT_CHARS = 5000


class CloneRequest(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """`POST /api/v1/clone`: speak `text` with a voice, or with the voice cloned from a sample."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_CHARS)]
    sample_id: uuid.UUID | None = None
    voice_id: uuid.UUID | None = None
    #: The name of a voice created from the sample (default "Voice from sample").
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class JobAccepted(msgspec.Struct, rename="camel"):
    """`202` of `POST /api/v1/clone`."""

    job_id: uuid.UUID
    status: str
    voice_id: uuid.UUID
    #: The clone attempt the job waits for; null when the voice was ready already.
    attempt_id: uuid.UUID | None


class JobError(msgspec.Struct):
    """Why a job failed: a stable code and a message safe to show."""

    code: str
    message: str | None


class JobStatus(msgspec.Struct, rename="camel"):
    """A synthesis job as its owner sees it."""

    job_id: uuid.UUID
    status: str
    voice_id: uuid.UUID
    sample_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    duration_ms: int | None
    error: JobError | None
    created_at: datetime
    finished_at: datetime | None


class JobResult(msgspec.Struct, rename="camel"):
    """Where to download a finished job's audio (a WAV)."""

    audio_url: str
    expires_in: int
    mime_type: str
    duration_ms: int | None


def _clean_text(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise ValidationFailed("text must not be blank")
    return cleaned


async def create_job(
    pool: AsyncConnectionPool[Connection],
    claims: UserClaims,
    request: CloneRequest,
    *,
    providers: ProviderSettings,
    record: Recorder | None = None,
) -> JobAccepted:
    """Queue the job, first creating the sample's voice and its clone attempt when it has none.

    Everything commits together, with the Idempotency-Key's `record` if there is one.
    """
    if (request.sample_id is None) == (request.voice_id is None):
        raise ValidationFailed("Send exactly one of sampleId and voiceId.")
    text = _clean_text(request.text)
    owner_id = uuid.UUID(claims.sub)
    async with user_transaction(pool, claims.raw) as conn:
        if request.sample_id is not None:
            if await fetch_optional(conn, Q["visible_sample"], {"id": request.sample_id}) is None:
                raise NotFound("Sample not found.")
            await become_service(conn)
            voice_id, attempt_id = await _voice_of_sample(conn, owner_id, request, providers)
        else:
            assert request.voice_id is not None  # noqa: S101 - exactly one is set, checked above
            if await fetch_optional(conn, Q["visible_voice"], {"id": request.voice_id}) is None:
                raise NotFound("Voice not found.")
            await become_service(conn)
            voice_id, attempt_id = await _usable_voice(conn, owner_id, request.voice_id, providers)
        job = await fetch_one(
            conn,
            Q["insert_job"],
            {
                "owner_id": owner_id,
                "voice_id": voice_id,
                "sample_id": request.sample_id,
                "attempt_id": attempt_id,
                "text": text,
            },
        )
        # Sent even when the job waits for its attempt: if the attempt ends before this commits, its
        # trigger cannot see the job, and this message is what finds it.
        await enqueue(conn, SYNTHESIS_QUEUE, {"jobId": str(job["id"])})
        accepted = JobAccepted(job["id"], job["status"], voice_id, attempt_id)
        if record is not None:
            await record(conn, accepted)
    return accepted


async def _voice_of_sample(
    conn: Connection, owner_id: uuid.UUID, request: CloneRequest, providers: ProviderSettings
) -> tuple[uuid.UUID, uuid.UUID | None]:
    sample = await fetch_optional(conn, Q["lock_sample"], {"id": request.sample_id, "owner_id": owner_id})
    if sample is None:
        raise NotFound("Sample not found.")  # deleted since the caller's check
    if sample["status"] == "failed":
        raise SampleRejected(f"The sample was refused: {sample['failure_reason']}")
    voice = None
    if sample["voice_id"] is not None:
        voice = await fetch_optional(conn, Q["lock_voice"], {"id": sample["voice_id"], "owner_id": owner_id})
    if voice is not None:
        ready = await _ready_or_cloning(conn, voice, providers)
        if ready is not None:
            return voice["id"], ready[1]
    provider = provider_of(sample["provider"], providers)
    if voice is not None:
        voice_id: uuid.UUID = voice["id"]  # cloned before and failed: clone it again from the sample
    else:
        voice_id = uuid.uuid4()
        await fetch_one(
            conn,
            Q["insert_sample_voice"],
            {
                "id": voice_id,
                "owner_id": owner_id,
                "name": request.name or "Voice from sample",
                "language": sample["language"],
                "consent_id": sample["consent_id"],
            },
        )
        await conn.execute(Q["link_sample_voice"], {"voice_id": voice_id, "sample_id": sample["id"]})
    attempt = await fetch_one(
        conn,
        Q["insert_sample_attempt"],
        {"owner_id": owner_id, "voice_id": voice_id, "sample_id": sample["id"], "provider": provider},
    )
    return voice_id, attempt["id"]


async def _usable_voice(
    conn: Connection, owner_id: uuid.UUID, voice_id: uuid.UUID, providers: ProviderSettings
) -> tuple[uuid.UUID, uuid.UUID | None]:
    voice = await fetch_optional(conn, Q["lock_voice"], {"id": voice_id, "owner_id": owner_id})
    if voice is None:
        raise NotFound("Voice not found.")  # deleted since the caller's check
    ready = await _ready_or_cloning(conn, voice, providers)
    if ready is None:
        raise VoiceNotReady("The voice has no cloned voice and none is being made; clone it from a sample.")
    return voice_id, ready[1]


async def _ready_or_cloning(
    conn: Connection, voice: dict[str, Any], providers: ProviderSettings
) -> tuple[str, uuid.UUID | None] | None:
    """(provider, None) for a voice that can speak now, (provider, attempt) for one still being cloned,
    None for one that neither has nor is getting a provider voice."""
    ready: tuple[str, uuid.UUID | None]
    if voice["provider_voice_id"] is not None and voice["tts_provider"] is not None:
        ready = (voice["tts_provider"], None)
    else:
        pending = await fetch_optional(conn, Q["open_attempt"], {"voice_id": voice["id"]})
        if pending is None:
            return None
        ready = (pending["provider"], pending["id"])
    if not providers.has_key(ready[0]):
        raise ProviderNotConfigured(f"Voice provider {ready[0]!r} is not configured ({key_variable(ready[0])}).")
    return ready


async def job_status(conn: Connection, job_id: uuid.UUID) -> JobStatus:
    """The caller's job (RLS on `conn` decides whose); 404 for anyone else's."""
    row = await _job(conn, job_id)
    error = None if row["error_code"] is None else JobError(row["error_code"], row["error_message"])
    return JobStatus(
        job_id=row["id"],
        status=row["status"],
        voice_id=row["voice_id"],
        sample_id=row["sample_id"],
        attempt_id=row["attempt_id"],
        duration_ms=row["duration_ms"],
        error=error if row["status"] == "failed" else None,
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


async def job_result(conn: Connection, storage: ObjectStorage, job_id: uuid.UUID) -> JobResult:
    """A short-lived signed URL of the finished job's WAV; 409 while it runs or after it failed."""
    row = await _job(conn, job_id)
    if row["status"] == "failed":
        raise SynthesisFailed(f"The job failed ({row['error_code']}): {row['error_message']}")
    if row["status"] != "succeeded":
        raise SynthesisNotFinished(f"The job is {row['status']}; poll its status until it has succeeded.")
    url = await storage.create_signed_url(row["output_bucket_id"], row["output_object_path"], RESULT_URL_SECONDS)
    return JobResult(
        audio_url=url, expires_in=RESULT_URL_SECONDS, mime_type="audio/wav", duration_ms=row["duration_ms"]
    )


async def _job(conn: Connection, job_id: uuid.UUID) -> dict[str, Any]:
    row = await fetch_optional(conn, Q["job"], {"id": job_id})
    if row is None:
        raise NotFound("Job not found.")
    return row
