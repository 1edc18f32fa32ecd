"""`VOICE_SYNTHESIS`: speak a job's text in its voice, mark it with the watermark, sign the WAV with its C2PA
manifest (which covers the marked audio) and store it in `voice-renders`.

A job whose voice is still being cloned waits: its message is put back, and the attempt's end sends
it again (a trigger). A provider failure that may pass (a timeout, 429, 5xx) is retried once; the next
one fails the job with `inference_failed`. A voice the provider no longer has, or whose model it
retired, is enrolled again from its sample while the job waits (`heal`). Audio that cannot be signed
is never stored: the job fails with `provenance_failed`. A voice in a language its provider cannot speak,
or a text it cannot read, fails the job with `language_not_supported` before anything is spoken.

Jobs are read in turn by their owners (`reader`): one user's backlog of queued jobs holds at most their share of a
consumer's slots, and another user's job is read before the rest of it.

One run speaks a job at a time: the run claims it with a lease it extends while it works, and every write
of the run (progress, the end) is fenced by that lease. A second delivery of the job's message (the
attempt's wake-up beside the job's own re-check, a redelivery) finds the job done, or leased and left
alone until the lease would have run out; so a worker that died mid-job is taken over once its lease
expires, and the job is spoken again from its start. A run that met an outage could not give its lease
up, but its own worker knows the run has ended and takes the job again as soon as the database answers.
A job its owner cancels loses its lease with its status, so a run speaking it stops at its next write
(a part's progress, the lease's extension, the end) and stores nothing. Safe to repeat: the job is finished by a guarded
update and its render stored, under a fixed name and with its digest recorded, in that update's
transaction, so a second delivery changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from backend import leases, queues
from backend.audio.render import marked_wav
from backend.backoff import retry_delay
from backend.clone import LikenessSource, judge_render
from backend.context import Outcome, WorkerContext
from backend.cpu import yielding
from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.errors import (
    DatabaseUnavailable,
    LanguageNotSupported,
    LeaseLost,
    ProvenanceFailed,
    QuotaExceeded,
    TooManyRequests,
)
from backend.policy.speaker import Awaited, Mute, Waits, speaker
from backend.provenance import SynthesisClaim
from backend.providers.base import ProviderVoice, SynthesisResult, stored_voice
from backend.providers.errors import (
    ModelRetiredError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    UnsupportedLanguageError,
    VoiceNotFoundError,
)
from backend.providers.registry import check_speakable
from backend.records.rows import fetch_optional_record
from backend.records.synthesis_jobs import ENDED, SynthesisJobStatus
from backend.storage import integrity, paths
from backend.synthesis import heal
from backend.text import pieces
from backend.usage import ledger

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
BUCKET = paths.RENDERS
#: A job whose voice is still being cloned looks again this late, should the attempt's wake-up be lost.
WAIT_RECHECK_SECONDS = 30
#: Provider failures that may pass are retried this many times before the job fails.
MAX_PROVIDER_RETRIES = 1
#: The runs of this process speaking a job now. A job leased to a run of this worker that is not among them
#: was left by a run that could not give its lease up (an outage): that lease holds nobody out.
_RUNNING: set[str] = set()


class JobToSpeak(msgspec.Struct, frozen=True, kw_only=True):
    """A job as a run takes it (`load_job`): its voice, the consent its manifest names, and the clone
    attempt it may wait for (its fields None when it waits for none)."""

    id: uuid.UUID
    owner_id: uuid.UUID
    status: SynthesisJobStatus
    input_text: str
    retry_count: int
    attempt_id: uuid.UUID | None
    voice_id: uuid.UUID
    tts_provider: str | None
    provider_voice_id: str | None
    provider_target_model: str | None
    provider_metadata: dict[str, Any]
    language: str | None
    consent_id: uuid.UUID | None
    consent_version: str | None
    attempt_status: str | None
    attempt_provider: str | None
    attempt_voice_id: str | None
    attempt_target_model: str | None
    attempt_metadata: dict[str, Any] | None
    attempt_error_message: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    db_now: datetime


def _speaker_of(job: JobToSpeak) -> ProviderVoice | Waits | Mute:
    """The `speaker` rule on a job row: its voice, and the clone attempt it waits for if any. A voice whose
    provider cannot speak its language or read the job's text is mute, as when the job was made: a job queued
    past that check (or before it existed) is never spoken."""
    attempt = None
    if job.attempt_id is not None and job.attempt_status is not None and job.attempt_provider is not None:
        attempt = Awaited(
            id=job.attempt_id,
            status=job.attempt_status,
            provider=job.attempt_provider,
            voice=stored_voice(
                job.attempt_provider, job.attempt_voice_id, job.attempt_target_model, job.attempt_metadata
            ),
            error_message=job.attempt_error_message,
        )
    own = stored_voice(job.tts_provider, job.provider_voice_id, job.provider_target_model, job.provider_metadata)
    state = speaker(own, attempt)
    if isinstance(state, ProviderVoice):
        try:
            check_speakable(state.provider, job.language, job.input_text)
        except LanguageNotSupported as refused:
            return Mute(refused.code, refused.detail)
    return state


def synthesis_handler(ctx: WorkerContext, worker_id: str, turns: queues.Turns | None = None) -> queues.Handler:
    """The synthesis queue's handler for worker `worker_id`: each message's job spoken as far as it can go now
    (`process_synthesis`), counted in `turns` as its owner's while it runs (read with `reader(turns)`); one of
    several jobs its owner has in hand here does its CPU work `yielding` to other users' (`backend.cpu`)."""

    async def handle(message: queues.Message) -> datetime | None:
        if turns is None:
            return (await process_synthesis(ctx, message.id_of("jobId"), worker_id)).retry_at
        with turns.holding(message.owner), yielding(message.owner is not None and turns.held(message.owner) > 1):
            return (await process_synthesis(ctx, message.id_of("jobId"), worker_id)).retry_at

    return handle


def reader(turns: queues.Turns) -> queues.Reader:
    """The synthesis queue's reader: its jobs taken in turn by their owners, none past their share of the slots
    (`queues.Turns`), so that another user's job never waits behind one user's backlog."""

    async def read(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        return await fetch_all(conn, _Q["read_in_turn"], {"vt": vt, "qty": qty, **turns.params()})

    return read


async def on_dead_letter(conn: Connection, message: queues.Message, code: str, reason: str) -> None:
    """Fail the job of a dead-lettered message with `code`, in the dead-lettering transaction."""
    await fail_dead_lettered_job(conn, message.id_of("jobId"), reason, code=code)


async def process_synthesis(ctx: WorkerContext, job_id: uuid.UUID, worker_id: str) -> Outcome:
    """Take the job as far as it can go now, as a run of worker `worker_id`; safe to call again at any point.

    The text is spoken a piece (a sentence or a few) at a time, and the job's progress is recorded after
    each piece; a transient failure of any piece retries the job once, from its start. A run that fails
    (an outage) gives its lease up, so the next delivery takes the job at once.
    """
    return await JobRun(ctx, job_id, worker_id).run()


class JobRun:
    """One run on one job: claim it with a lease (`owner`), speak it, mark, sign and store its audio and finish it;
    or retry, heal or fail it. Every write of the run is fenced by its lease."""

    def __init__(self, ctx: WorkerContext, job_id: uuid.UUID, worker_id: str) -> None:
        self.ctx = ctx
        self.job_id = job_id
        # Each run is its own lease owner: a second delivery to this very worker is another run.
        self.owner = f"{worker_id}/{uuid.uuid4().hex[:8]}"

    async def run(self) -> Outcome:
        """Take the job as far as it can go now (`process_synthesis`)."""
        _RUNNING.add(self.owner)
        try:
            return await self._take_and_speak()
        finally:
            _RUNNING.discard(self.owner)

    async def _take_and_speak(self) -> Outcome:
        started = await self._start()
        if isinstance(started, Outcome):
            return started
        job, voice, parts = started
        try:
            async with leases.kept(self._extend, self.ctx.lease_seconds / 3, f"synthesis job {self.job_id}"):
                return await self._render(job, voice, parts)
        except LeaseLost:
            # Its owner canceled it (the lease goes with the status), or this run stalled past its lease and
            # another took the job over: either way nothing more of this run is written or stored.
            log.warning("synthesis job %s: no longer this run's (canceled, or taken over after a stall)", self.job_id)
            return Outcome(status="lease_lost")
        except Exception:
            with contextlib.suppress(DatabaseUnavailable, TooManyRequests):  # it runs out by itself then
                async with self.ctx.db.service_transaction() as conn:
                    await conn.execute(_Q["release_lease"], {"id": self.job_id, "owner": self.owner})
            raise

    async def _start(self) -> tuple[JobToSpeak, ProviderVoice, list[str]] | Outcome:
        """Claim the job for this run with its pieces to speak and say which voice speaks them, or why there
        is nothing to do now."""
        async with self.ctx.db.service_transaction() as conn:
            job = await fetch_optional_record(conn, _Q["load_job"], {"id": self.job_id}, JobToSpeak)
            if job is None or job.status in ENDED:
                return Outcome(status="missing" if job is None else job.status)
            leased = job.lease_expires_at
            left = job.lease_owner if _left_by_this_worker(job.lease_owner, self.owner) else None
            if job.status is SynthesisJobStatus.PROCESSING and leased is not None and leased > job.db_now and not left:
                # Another run speaks it (or did until it died): look again when its lease would have run out.
                return Outcome(status=SynthesisJobStatus.PROCESSING, retry_at=leased + timedelta(seconds=1))
            voice = _speaker_of(job)
            if isinstance(voice, Mute):
                return await heal.fail_job(conn, self.job_id, voice.code, voice.message)
            if isinstance(voice, Waits):
                return Outcome(
                    status=SynthesisJobStatus.QUEUED, retry_at=job.db_now + timedelta(seconds=WAIT_RECHECK_SECONDS)
                )
            parts = pieces(job.input_text)
            params = {**self._lease(), "total": len(parts), "left": left}
            if await fetch_optional(conn, _Q["start_job"], params) is None:
                return Outcome(status="stale")
            refused = await self._reserve(conn, job, voice, parts, 0)
        return (job, voice, parts) if refused is None else refused

    def _call(self, job: JobToSpeak, voice: ProviderVoice, parts: list[str], index: int) -> ledger.Call:
        """Piece `index` of this run, as the usage ledger keys it. Each run's pieces are calls of their own: a run
        that speaks again (a retry, a takeover from a dead worker) sends the text again, and is counted again."""
        return ledger.Call(
            owner_id=job.owner_id,
            provider=voice.provider,
            model=voice.target_model,
            kind=ledger.UsageKind.JOB,
            work_id=self.job_id,
            call_key=f"{self.owner}/{index}",
            characters=len(parts[index]),
        )

    async def _reserve(
        self, conn: Connection, job: JobToSpeak, voice: ProviderVoice, parts: list[str], index: int
    ) -> Outcome | None:
        """Reserve piece `index`'s characters on `conn`'s transaction, which commits before the piece is spoken;
        the job failed `quota_exceeded` (in that transaction) when they would pass the owner's quota, so nothing
        past it reaches the provider."""
        call = self._call(job, voice, parts, index)
        try:
            await self.ctx.ledger.reserve(conn, call)
        except QuotaExceeded as exc:
            return await heal.fail_job(conn, self.job_id, QuotaExceeded.code, exc.detail, lease_owner=self.owner)
        return None

    async def _extend(self) -> None:
        async with self.ctx.db.service_statement() as conn:
            if await fetch_optional(conn, _Q["extend_lease"], self._lease()) is None:
                raise LeaseLost

    def _lease(self) -> dict[str, Any]:
        return {"id": self.job_id, "owner": self.owner, "lease_seconds": self.ctx.lease_seconds}

    async def _render(self, job: JobToSpeak, voice: ProviderVoice, parts: list[str]) -> Outcome:
        """Speak, mark (the watermark), sign and store the job's audio and finish it."""
        ctx = self.ctx
        spoken = await self._speak(job, voice, parts)
        if isinstance(spoken, Outcome):
            return spoken
        wav, duration_s = await ctx.cpu.run(job.owner_id, marked_wav, [result.audio for result in spoken])
        claim = SynthesisClaim(
            voice_id=job.voice_id,
            provider=voice.provider,
            model=spoken[-1].model or voice.target_model,
            consent_id=job.consent_id,
            consent_version=job.consent_version,
        )
        try:
            signed = await ctx.cpu.run(job.owner_id, ctx.signer.sign_audio, wav, "audio/wav", claim)
        except ProvenanceFailed as exc:
            # c2pa's own words are for operators; the job says what happened in the error's fixed terms.
            log.exception("synthesis job %s: %s", self.job_id, exc.detail)
            return await self._fail(ProvenanceFailed.code, ProvenanceFailed().detail)
        path = paths.render(job.owner_id, self.job_id)
        finish = {"id": self.job_id, "bucket": BUCKET, "path": path, "duration_ms": round(duration_s * 1000)}
        async with ctx.db.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
            finished = await fetch_optional(conn, _Q["finish_job"], {**finish, "owner": self.owner})
            # Stored only by the delivery that finishes the job, so a late one cannot replace its audio.
            if finished is not None:
                await integrity.write(conn, ctx.storage, BUCKET, path, signed, content_type="audio/wav")
                # The pieces' own lengths are not measured (each would be decoded): the render's seconds are
                # shared between this run's calls by their characters.
                seconds = {"id": self.job_id, "run": f"{self.owner}/", "audio_seconds": duration_s}
                await conn.execute(_Q["record_run_seconds"], seconds)
        if finished is None:
            return Outcome(status="stale")
        # VOICEGATE_LIKENESS_PROBE=off: the voice's first render is what its likeness is judged on.
        await judge_render(
            ctx,
            owner_id=job.owner_id,
            voice_id=job.voice_id,
            voice=voice,
            spoken=[result.audio for result in spoken],
            source=LikenessSource.RENDER,
        )
        return Outcome(status=SynthesisJobStatus.SUCCEEDED)

    async def _speak(self, job: JobToSpeak, voice: ProviderVoice, parts: list[str]) -> list[SynthesisResult] | Outcome:
        """Each piece spoken in turn, with the job's progress recorded after each; or what became of the job
        when the provider failed. LeaseLost once another run holds the job."""
        spoken: list[SynthesisResult] = []
        refused = None
        try:
            for index, part in enumerate(parts):
                # The piece's first send was reserved (`_start`, `_progress`); the charge gives it back if it is never
                # sent, and reserves each resend before it is made.
                async with self.ctx.ledger.charge(self._call(job, voice, parts, index)) as charge:
                    provider = self.ctx.providers.get(voice.provider, owner=job.owner_id)
                    spoken.append(await provider.synthesize(voice, part, meter=charge))
                if (refused := await self._progress(job, voice, parts, len(spoken))) is not None:
                    break
        except (QuotaExceeded, ProviderError) as exc:
            return await self._failed(job, voice, exc)
        return spoken if refused is None else refused

    async def _failed(self, job: JobToSpeak, voice: ProviderVoice, exc: QuotaExceeded | ProviderError) -> Outcome:
        """What becomes of the job when a piece could not be spoken: retried, healed or failed, as `exc` says."""
        if isinstance(exc, QuotaExceeded):
            # A resend the quota refused, never sent.
            return await self._fail(QuotaExceeded.code, exc.detail)
        if isinstance(exc, TransientProviderError | UnknownOutcomeError):
            if job.retry_count < MAX_PROVIDER_RETRIES:
                return await self._retry(job.retry_count, exc.safe_message)
            return await self._fail("inference_failed", f"inference failed: {exc.safe_message}")
        if isinstance(exc, VoiceNotFoundError | ModelRetiredError):
            recheck = timedelta(seconds=WAIT_RECHECK_SECONDS)
            return await heal.heal_job(self.ctx, self.job_id, voice, exc, recheck=recheck, lease_owner=self.owner)
        if isinstance(exc, UnsupportedLanguageError):
            # The engine's own record of the voice's language refused it: that does not change on a retry.
            return await self._fail(LanguageNotSupported.code, exc.safe_message)
        if isinstance(exc, PermanentProviderError):
            return await self._fail("inference_failed", f"inference failed: {exc.safe_message}")
        raise exc

    async def _progress(self, job: JobToSpeak, voice: ProviderVoice, parts: list[str], done: int) -> Outcome | None:
        """Record `done` pieces spoken and reserve the next, in one transaction; the job failed when the next
        would pass the owner's quota. LeaseLost when the run no longer holds the job (it is not spoken twice)."""
        async with self.ctx.db.service_transaction() as conn:
            progress = {"id": self.job_id, "done": done, "owner": self.owner}
            if await fetch_optional(conn, _Q["record_progress"], progress) is None:
                raise LeaseLost
            if done < len(parts):
                return await self._reserve(conn, job, voice, parts, done)
        return None

    async def _retry(self, retry_count: int, safe_message: str) -> Outcome:
        params = {"id": self.job_id, "code": "provider_unavailable", "message": safe_message, "owner": self.owner}
        async with self.ctx.db.service_transaction() as conn:
            retried = await fetch_optional(conn, _Q["retry_job"], params)
        if retried is None:
            return Outcome(status="stale")
        log.info("synthesis job %s: provider failure, retrying once", self.job_id)
        ctx = self.ctx
        delay = retry_delay(retry_count + 1, base_seconds=ctx.retry_base_seconds, max_seconds=ctx.retry_max_seconds)
        return Outcome(status=SynthesisJobStatus.QUEUED, retry_at=retried["db_now"] + timedelta(seconds=delay))

    async def _fail(self, code: str, message: str) -> Outcome:
        async with self.ctx.db.service_transaction() as conn:
            return await heal.fail_job(conn, self.job_id, code, message, lease_owner=self.owner)


def _left_by_this_worker(lease_owner: str | None, run: str) -> bool:
    """Whether `lease_owner` is a run of the worker `run` belongs to that no longer runs."""
    if lease_owner is None or lease_owner in _RUNNING:
        return False
    return lease_owner.rpartition("/")[0] == run.rpartition("/")[0]


async def fail_dead_lettered_job(conn: Connection, job_id: uuid.UUID, reason: str, *, code: str) -> None:
    """Fail a job whose message was dead-lettered with `code` (`storage_unavailable` when it waited out Storage
    too long), unless it already ended (same transaction)."""
    await heal.fail_job(conn, job_id, code, reason)
