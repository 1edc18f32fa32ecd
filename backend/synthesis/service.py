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

import msgspec

from backend import queues
from backend.auth.verify import UserClaims
from backend.clone.start import StoredSample, start_clone
from backend.db.connection import Connection
from backend.db.queries import load_queries
from backend.db.units import Database, Recorder, become_service
from backend.errors import (
    NotFound,
    SampleRejected,
    SynthesisFailed,
    SynthesisNotFinished,
    ValidationFailed,
    VoiceNotReady,
)
from backend.fields import Name, Text
from backend.provenance import PROVENANCE
from backend.providers.base import ProviderVoice
from backend.providers.config import ProviderSettings
from backend.providers.registry import check_enrolment_language, check_speakable
from backend.records import samples as sample_records
from backend.records import voices as voice_records
from backend.records.rows import fetch_record
from backend.records.samples import VoiceSampleStatus
from backend.records.synthesis_jobs import SynthesisJobRow, SynthesisJobStatus, job_row
from backend.records.voices import VoiceName, VoiceRow
from backend.samples import service as samples
from backend.storage import integrity
from backend.storage.client import ObjectStorage
from backend.synthesis.speaker import Mute, Waits, speaker_now
from backend.text import cleaned
from backend.voices import service as voices

_Q = load_queries(Path(__file__).with_suffix(".sql"))
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


async def create_job(
    db: Database,
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
    text = cleaned(request.text)
    owner_id = uuid.UUID(claims.sub)
    async with db.user_transaction(claims.raw) as conn:
        if request.sample_id is not None:
            if not await samples.visible(conn, request.sample_id):
                raise NotFound("Sample not found.")
            await become_service(conn)
            voice_id, attempt_id = await _voice_of_sample(
                conn, owner_id, request.sample_id, request, text=text, providers=providers
            )
        else:
            assert request.voice_id is not None  # noqa: S101 - exactly one is set, checked above
            if not await voices.visible(conn, request.voice_id):
                raise NotFound("Voice not found.")
            await become_service(conn)
            voice_id, attempt_id = await _usable_voice(conn, owner_id, request.voice_id, text, providers)
        job = await fetch_record(
            conn,
            _Q["insert_job"],
            {
                "owner_id": owner_id,
                "voice_id": voice_id,
                "sample_id": request.sample_id,
                "attempt_id": attempt_id,
                "text": text,
            },
            SynthesisJobRow,
        )
        # Sent even when the job waits for its attempt: if the attempt ends before this commits, its
        # trigger cannot see the job, and this message is what finds it.
        await queues.send(conn, queues.SYNTHESIS, queues.synthesis_message(job.id))
        accepted = JobAccepted(job.id, job.status, voice_id, attempt_id)
        if record is not None:
            await record(conn, accepted)
    return accepted


async def _voice_of_sample(
    conn: Connection,
    owner_id: uuid.UUID,
    sample_id: uuid.UUID,
    request: CloneRequest,
    *,
    text: str,
    providers: ProviderSettings,
) -> tuple[uuid.UUID, uuid.UUID | None]:
    sample = await sample_records.lock_owned(conn, sample_id, owner_id)
    if sample is None:
        raise NotFound("Sample not found.")  # deleted since the caller's check
    if sample.status is VoiceSampleStatus.FAILED:
        raise SampleRejected(f"The sample was refused: {sample.failure_reason}")
    voice = None
    if sample.voice_id is not None:
        voice = await voice_records.lock_live(conn, sample.voice_id, owner_id)
    if voice is not None:
        state = await _state_of(conn, voice, text, providers)
        if not isinstance(state, Mute):
            return voice.id, _waits_for(state)
    provider = providers.usable(sample.provider)
    # The language the clone attempt enrols the voice in (see `clone.step.AttemptRun.enrol`).
    language = sample.language or (voice.language if voice is not None else None)
    check_enrolment_language(provider, language)
    check_speakable(provider, language, text)
    source = StoredSample(
        sample_id=sample.id,
        consent_id=sample.consent_id,
        provider=provider,
        language=sample.language,
        voice_id=None if voice is None else voice.id,  # cloned before and failed: clone it again
        # A voice takes its sample's name (made its own: "Kitchen (2)" if a voice has it) unless the request names it.
        name=(
            VoiceName(request.name.strip(), given=True)
            if request.name
            else VoiceName(sample.name or "Voice from sample", given=False)
        ),
    )
    attempt = await start_clone(conn, owner_id, source)
    return attempt.voice_id, attempt.id


async def _usable_voice(
    conn: Connection, owner_id: uuid.UUID, voice_id: uuid.UUID, text: str, providers: ProviderSettings
) -> tuple[uuid.UUID, uuid.UUID | None]:
    voice = await voice_records.lock_live(conn, voice_id, owner_id)
    if voice is None:
        raise NotFound("Voice not found.")  # deleted since the caller's check
    state = await _state_of(conn, voice, text, providers)
    if isinstance(state, Mute):
        raise VoiceNotReady("The voice has no cloned voice and none is being made; clone it from a sample.")
    return voice_id, _waits_for(state)


async def _state_of(
    conn: Connection, voice: VoiceRow, text: str, providers: ProviderSettings
) -> ProviderVoice | Waits | Mute:
    """`speaker` for a voice row when a job is made: its open attempt matters only while the row has no
    provider voice. A voice that speaks or waits needs its provider configured, able to speak the voice's
    language and read `text` (422 otherwise)."""
    state = await speaker_now(conn, voice)
    if not isinstance(state, Mute):
        providers.usable(state.provider)
        check_speakable(state.provider, voice.language, text)
    return state


def _waits_for(state: ProviderVoice | Waits) -> uuid.UUID | None:
    return state.attempt_id if isinstance(state, Waits) else None


async def job_status(db: Database, claims: UserClaims, job_id: uuid.UUID) -> JobStatus:
    """The caller's job (RLS decides whose); 404 for anyone else's."""
    job = await owned_job(db, claims, job_id)
    failed = job.status is SynthesisJobStatus.FAILED
    error = JobError(job.error_code, job.error_message) if failed and job.error_code is not None else None
    total = job.progress_total
    return JobStatus(
        job_id=job.id,
        status=job.status,
        voice_id=job.voice_id,
        sample_id=job.sample_id,
        attempt_id=job.attempt_id,
        duration_ms=job.duration_ms,
        error=error,
        progress=None if total is None else JobProgress(done=job.progress_done or 0, total=total),
        created_at=job.created_at,
        finished_at=job.finished_at,
        provenance=PROVENANCE if job.status is SynthesisJobStatus.SUCCEEDED else None,
    )


async def job_result(db: Database, storage: ObjectStorage, claims: UserClaims, job_id: uuid.UUID) -> JobResult:
    """A short-lived signed URL of the finished job's WAV, once its bytes are checked against the digest
    recorded when it was stored; 409 while it runs, after it failed, or when the file has changed since
    (`stored_object_altered`, with an audit event)."""
    job, bucket, path = await finished_render(db, claims, job_id)
    url = await integrity.signed_url(
        db,
        storage,
        bucket,
        path,
        RESULT_URL_SECONDS,
        actor=f"user:{claims.sub}",
        subject=("synthesis_job", job_id),
    )
    return JobResult(audio_url=url, expires_in=RESULT_URL_SECONDS, mime_type="audio/wav", duration_ms=job.duration_ms)


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
