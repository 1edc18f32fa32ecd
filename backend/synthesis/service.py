"""The synthesis jobs' use cases as their owner calls them (`/api/v1/clone`, and a voice's clips and preview):
queue a job, read its status, its result URL or its audio, cancel or delete it, and a voice's history of jobs
a page at a time; one object the composition root builds over the database, Storage, the CPU executor and
the provider settings. What the routes take and answer is `backend.synthesis.types`.

A job names the voice it speaks with. From a sample that has no voice yet, the voice and its clone attempt are
created with the job, in one transaction; the job then waits for that attempt, and the attempt's end wakes it (a
trigger on the attempt sends the job's message again).

Cancelling and deleting run as the service (owners only read `synthesis_jobs`), each after the caller's own
check that the job is theirs, with the owner in the statement as well."""

from __future__ import annotations

import base64
import binascii
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backend import queues, samples
from backend.audio.render import render_as_mp3
from backend.auth.verify import UserClaims
from backend.clone import StoredSample, start_clone
from backend.consents import phrases_said, withdraw_phrases
from backend.cpu import CpuExecutor
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database, Recorder, become_service
from backend.domain.limits import SpendQuota, UserLimits
from backend.domain.voices import VoiceRow
from backend.errors import (
    NotFound,
    ReadingRequired,
    SampleRejected,
    SynthesisEnded,
    SynthesisFailed,
    SynthesisNotFinished,
    ValidationFailed,
    VoiceNotReady,
)
from backend.policy.speaker import Mute, Waits, awaiting, own_voice, speaker
from backend.provenance import PROVENANCE
from backend.providers.base import ProviderVoice
from backend.providers.config import ProviderSettings
from backend.providers.registry import check_enrolment_language, check_speakable
from backend.records import attempts, sample_rows, voice_rows
from backend.records.rows import fetch_record
from backend.records.sample_rows import VoiceSampleStatus
from backend.records.synthesis_jobs import SynthesisJobRow, SynthesisJobStatus, job_row
from backend.records.voice_rows import VoiceName
from backend.storage import integrity
from backend.storage.client import ObjectStorage
from backend.synthesis.types import (
    MEDIA_TYPES,
    Clip,
    ClipAudio,
    ClipFormat,
    ClipPage,
    JobAccepted,
    JobError,
    JobProgress,
    JobRequest,
    JobResult,
    JobStatus,
    VoicePreview,
)
from backend.text import cleaned
from backend.usage import ledger
from backend.usage.job_admission import JobAdmission
from backend.usage.ledger import DEFAULT_SPEND, Allowance

_Q = load_queries(Path(__file__).with_suffix(".sql"))


@dataclass(frozen=True)
class SynthesisService:
    """A user's synthesis jobs: their use cases over the database, Storage (where a render is kept), the CPU
    executor (that encodes an MP3), the provider settings (which providers are configured), what one user may
    create (a sample's new voice counts) and spend (its jobs queued at once, its characters per window), and the
    process's way of a user's jobs to the database (`admission`: one at a time, refused at once for a moment after
    the database refused one)."""

    db: Database
    storage: ObjectStorage
    cpu: CpuExecutor
    provider_settings: ProviderSettings
    limits: UserLimits
    quota: SpendQuota = DEFAULT_SPEND
    admission: JobAdmission = field(default_factory=JobAdmission)

    async def create_job(
        self,
        claims: UserClaims,
        request: JobRequest,
        *,
        record: Recorder | None = None,
        seen: Callable[[Allowance], None] | None = None,
    ) -> JobAccepted:
        """Queue the job, first creating the sample's voice and its clone attempt when it has none.

        Everything commits together, with the Idempotency-Key's `record` if there is one. JobsLimited when the
        caller has VOICEGATE_USER_QUEUED_JOBS jobs not yet ended, QuotaExceeded when the text would pass what is
        left of their characters this window (the worker reserves them, piece by piece, as it speaks). A user's jobs
        reach the database one at a time in this process, and either refusal, once the database has answered it, is
        answered again from memory for a moment (`backend.usage.job_admission`); `seen` is told where the caller
        stands, for the answer's `RateLimit` fields.
        """
        if (request.sample_id is None) == (request.voice_id is None):
            raise ValidationFailed("Send exactly one of sampleId and voiceId.")
        text = cleaned(request.text)
        await self.admission.check(claims.sub, len(text))
        async with self.admission.one_at_a_time(claims.sub):
            # What the job before this one in the line learned decides it, when it was a refusal: at once, as this one
            # waited its turn already.
            if (refusal := self.admission.remembered(claims.sub, len(text))) is not None:
                raise refusal
            accepted, allowance = await self._queue_job(claims, request, text, record)
        if seen is not None:
            seen(allowance)
        return accepted

    async def _queue_job(
        self, claims: UserClaims, request: JobRequest, text: str, record: Recorder | None
    ) -> tuple[JobAccepted, Allowance]:
        """`create_job`'s transaction: the job and its message, and the sample's voice first when it has none."""
        owner_id = uuid.UUID(claims.sub)
        said = await phrases_said(self.db, self.cpu, owner_id, text)
        async with self.db.user_transaction(claims.raw) as conn:
            if request.sample_id is not None:
                if not await samples.visible(conn, request.sample_id):
                    raise NotFound("Sample not found.")
                await become_service(conn)
                voice_id, attempt_id = await _voice_of_sample(
                    conn,
                    owner_id,
                    request.sample_id,
                    request,
                    text=text,
                    providers=self.provider_settings,
                    limits=self.limits,
                )
            else:
                assert request.voice_id is not None  # noqa: S101 - exactly one is set, checked above
                if not await voice_rows.visible(conn, request.voice_id):
                    raise NotFound("Voice not found.")
                await become_service(conn)
                voice_id, attempt_id = await _usable_voice(
                    conn, owner_id, request.voice_id, text, self.provider_settings
                )
            await withdraw_phrases(conn, said)
            # Counted under the user's usage lock, so their jobs queued at once stay within the bound whichever
            # process queues them.
            admitted = await ledger.admit_job(
                conn, owner_id, len(text), self.quota, refused=functools.partial(self.admission.refused, claims.sub)
            )
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
        self.admission.accepted(claims.sub, admitted)
        return accepted, admitted.allowance

    async def job_status(self, claims: UserClaims, job_id: uuid.UUID) -> JobStatus:
        """The caller's job (RLS decides whose); 404 for anyone else's."""
        job = await owned_job(self.db, claims, job_id)
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

    async def job_result(self, claims: UserClaims, job_id: uuid.UUID) -> JobResult:
        """A short-lived signed URL of the finished job's WAV, once its bytes are checked against the digest
        recorded when it was stored; 409 while it runs, after it failed, or when the file has changed since
        (`stored_object_altered`, with an audit event)."""
        job, bucket, path = await finished_render(self.db, claims, job_id)
        url = await integrity.signed_url(
            self.db,
            self.storage,
            bucket,
            path,
            RESULT_URL_SECONDS,
            actor=f"user:{claims.sub}",
            subject=("synthesis_job", job_id),
        )
        return JobResult(
            audio_url=url, expires_in=RESULT_URL_SECONDS, mime_type="audio/wav", duration_ms=job.duration_ms
        )

    async def clip_audio(self, claims: UserClaims, job_id: uuid.UUID, *, fmt: ClipFormat) -> ClipAudio:
        """The finished job's audio: its stored WAV (checked against its digest, with its C2PA manifest), or that
        WAV encoded as MP3. 409 like `GET /{id}/result` while it runs, after it failed or was canceled."""
        job, bucket, path = await finished_render(self.db, claims, job_id)
        wav = await integrity.read(
            self.db, self.storage, bucket, path, actor=f"user:{claims.sub}", subject=("synthesis_job", job_id)
        )
        data = wav if fmt == "wav" else await self.cpu.run(job.owner_id, render_as_mp3, wav)
        return ClipAudio(data, MEDIA_TYPES[fmt], f"clip-{job_id}.{fmt}")

    async def cancel_job(self, claims: UserClaims, job_id: uuid.UUID) -> JobStatus:
        """Cancel the caller's queued or running job: nothing of it is stored after. 409 once it has ended."""
        await owned_job(self.db, claims, job_id)
        async with self.db.service_transaction() as conn:
            canceled = await fetch_optional(conn, _Q["cancel_job"], {"id": job_id, "owner_id": uuid.UUID(claims.sub)})
        if canceled is None:
            current = await owned_job(self.db, claims, job_id)
            raise SynthesisEnded(f"The job has already ended ({current.status}); there is nothing to cancel.")
        return await self.job_status(claims, job_id)

    async def delete_job(self, claims: UserClaims, job_id: uuid.UUID) -> None:
        """Delete the caller's ended job with its render (row, digest record and object, with an audit event),
        all or nothing: a render Storage cannot delete keeps the row. 409 while it is queued or running."""
        await owned_job(self.db, claims, job_id)
        async with self.db.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
            row = await fetch_optional(conn, _Q["delete_job"], {"id": job_id, "owner_id": uuid.UUID(claims.sub)})
            if row is None:
                raise SynthesisNotFinished("The job is still queued or running; cancel it before deleting it.")
            removed: list[str] = []
            if row["output_bucket_id"] is not None and row["output_object_path"] is not None:
                removed = await integrity.remove(
                    conn, self.storage, row["output_bucket_id"], [row["output_object_path"]]
                )
            detail = {"bucket_id": row["output_bucket_id"], "objects": [row["output_object_path"]], "removed": removed}
            await record_audit(
                conn, f"user:{claims.sub}", "synthesis_job.delete", "synthesis_job", job_id, detail=detail
            )

    async def voice_clips(self, claims: UserClaims, voice_id: uuid.UUID, *, limit: int, cursor: str | None) -> ClipPage:
        """A page of the caller's voice's clips, newest first; 404 for a voice that is not theirs (or deleted)."""
        before_at, before_id = _after(cursor)
        async with self.db.user_transaction(claims.raw) as conn:
            if not await voice_rows.visible(conn, voice_id):
                raise NotFound("Voice not found.")
            params = {"voice_id": voice_id, "before_at": before_at, "before_id": before_id, "limit": limit + 1}
            rows = await fetch_all(conn, _Q["voice_jobs"], params)
        clips = [
            Clip(
                job_id=row["job_id"],
                status=row["status"],
                text=row["text"],
                duration_ms=row["duration_ms"],
                error=None if row["error_code"] is None else JobError(row["error_code"], row["error_message"]),
                created_at=row["created_at"],
                finished_at=row["finished_at"],
            )
            for row in rows[:limit]
        ]
        return ClipPage(clips, _cursor(clips[-1]) if len(rows) > limit else None)

    async def voice_preview(self, claims: UserClaims, voice_id: uuid.UUID) -> VoicePreview:
        """A short-lived URL to hear the caller's voice (404 for anyone else's); 409 `stored_object_altered` for a
        file changed since voicegate stored it."""
        async with self.db.user_transaction(claims.raw) as conn:
            if not await voice_rows.visible(conn, voice_id):
                raise NotFound("Voice not found.")
            heard = await fetch_optional(conn, _Q["preview_of_voice"], {"voice_id": voice_id})
        if heard is None:
            return VoicePreview(audio_url=None, expires_in=0, source=None)
        url = await integrity.signed_url(
            self.db,
            self.storage,
            heard["bucket"],
            heard["path"],
            RESULT_URL_SECONDS,
            actor=f"user:{claims.sub}",
            subject=("voice", voice_id),
        )
        return VoicePreview(audio_url=url, expires_in=RESULT_URL_SECONDS, source=heard["source"])


def _cursor(clip: Clip) -> str:
    raw = f"{clip.created_at.isoformat()}|{clip.job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    """The (created_at, id) a cursor from `_cursor` names; 400 for anything else."""
    if cursor is None:
        return None, None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, job_id = raw.partition("|")
        return datetime.fromisoformat(at), uuid.UUID(job_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed("cursor: not a cursor this route gave (use nextCursor as it came)") from None


async def _voice_of_sample(
    conn: Connection,
    owner_id: uuid.UUID,
    sample_id: uuid.UUID,
    request: JobRequest,
    *,
    text: str,
    providers: ProviderSettings,
    limits: UserLimits,
) -> tuple[uuid.UUID, uuid.UUID | None]:
    sample = await sample_rows.lock_owned(conn, sample_id, owner_id)
    if sample is None:
        raise NotFound("Sample not found.")  # deleted since the caller's check
    if sample.status is VoiceSampleStatus.FAILED:
        raise SampleRejected(f"The sample was refused: {sample.failure_reason}")
    if sample.status is VoiceSampleStatus.AWAITING_READING:
        raise ReadingRequired(
            "Before this sample is used, its speaker reads a short phrase aloud, so that voicegate hears the voice"
            f" is theirs: POST /api/v1/voice-samples/{sample.id}/reading gives the phrase to record."
        )
    voice = None
    if sample.voice_id is not None:
        voice = await voice_rows.lock_live(conn, sample.voice_id, owner_id)
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
        limits=limits,
    )
    attempt = await start_clone(conn, owner_id, source)
    return attempt.voice_id, attempt.id


async def _usable_voice(
    conn: Connection, owner_id: uuid.UUID, voice_id: uuid.UUID, text: str, providers: ProviderSettings
) -> tuple[uuid.UUID, uuid.UUID | None]:
    voice = await voice_rows.lock_live(conn, voice_id, owner_id)
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
    own = own_voice(voice)
    state = speaker(own, None if own else awaiting(await attempts.open_for_voice(conn, voice.id)))
    if not isinstance(state, Mute):
        providers.usable(state.provider)
        check_speakable(state.provider, voice.language, text)
    return state


def _waits_for(state: ProviderVoice | Waits) -> uuid.UUID | None:
    return state.attempt_id if isinstance(state, Waits) else None


#: How long a result URL works: long enough to fetch or stream the audio, short enough not to be shared.
RESULT_URL_SECONDS = 300


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
