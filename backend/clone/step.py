"""`VOICE_CLONE_PROCESS`: drive one attempt from `queued` to `ready` + `synced`, resumably.

Each delivery is one `AttemptRun`: it looks at the attempt as committed and takes the next step; every
step is one transition through the SQL function, fenced by the worker's lease (or the version once the
lease is gone), so a step repeated after a crash, a redelivered message or a second worker does no harm:

    queued ─claim→ processing ─enrol→ verifying ─verify→ ready + syncing ─sync→ synced (+ preview queued)

(verify, ready and sync are one call once the provider has confirmed the voice).

The enrolment key is stored before the provider is called, and the adapters look it up before any
create, so one attempt never makes two provider voices. A transient provider failure puts the attempt
back to `queued` with a backoff (until `max_retries`); a permanent one fails it with a safe message.
Once synced, the voice's manifest (`clone.manifest`) is written; a step that finds the attempt synced
writes it again, so a manifest lost to a Storage failure is written on the message's next delivery.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec

from backend import leases, queues
from backend.audio.errors import AudioRejected
from backend.backoff import retry_delay
from backend.clone import likeness, manifest, portability, set_members
from backend.context import Outcome, WorkerContext
from backend.db.connection import Connection
from backend.domain.attempts import (
    OPEN_STATUSES,
    AttemptRow,
    AttemptSource,
    AttemptStatus,
    PreviewStatus,
    RuntimeStatus,
    as_row,
)
from backend.domain.voices import VoiceRow
from backend.errors import LeaseLost, NotFound, StaleVersion, StoredObjectAltered
from backend.failpoints import failpoint
from backend.providers.base import ProviderVoice
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.records import attempts, sample_rows, synthesis_jobs, voice_rows
from backend.samples import EnrolmentSample, SampleCheck, SampleGone
from backend.usage import ledger

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The reflection segment of the internal route that stands for "no reflection" (an attempt made
#: without one, e.g. by finalize or for a synthesis job).
NO_REFLECTION = uuid.UUID(int=0)
#: Sources whose provider voice was not enrolled from a sample: a voice the provider lost cannot be
#: enrolled again in the attempt itself.
_NOT_ENROLLED = frozenset({AttemptSource.CUSTOM_VOICE_ID, AttemptSource.PROVIDER_CHURN})


def internal_process_path(reflection_id: uuid.UUID | None, attempt_id: uuid.UUID) -> str:
    """The internal route that runs `process_attempt` for a `CONSUMER_MODE=http` worker."""
    reflection = reflection_id or NO_REFLECTION
    return f"/internal/reflections/{reflection}/voice-clone-attempts/{attempt_id}/process"


class _Failed(Exception):
    """A reason to fail the attempt for good, with a code and a message safe to show the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def lease_on_read(
    ctx: WorkerContext, worker_id: str
) -> Callable[[Connection, int, int], Awaitable[list[dict[str, Any]]]]:
    """The clone queue's reader: pgmq's read that also leases each due `queued` attempt it delivers to
    this worker, in the read's transaction (`process_attempt` then needs no claim of its own)."""

    async def read(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        return await attempts.read_and_lease(
            conn, queues.CLONE, vt=vt, qty=qty, lease_owner=worker_id, lease_seconds=ctx.lease_seconds
        )

    return read


def attempt_handler(ctx: WorkerContext, worker_id: str) -> queues.Handler:
    """The clone queue's handler for worker `worker_id`: each message's attempt taken as far as it can go now
    (`process_attempt`), as the read that delivered it leased it (`lease_on_read`)."""

    async def handle(message: queues.Message) -> datetime | None:
        attempt_id = message.id_of("attemptId")
        outcome = await process_attempt(ctx, attempt_id, worker_id, leased=message.leased, read_at=message.read_at)
        return outcome.retry_at

    return handle


async def on_dead_letter(conn: Connection, message: queues.Message, code: str, reason: str) -> None:
    """Fail the attempt of a dead-lettered clone message with `code`, in the dead-lettering transaction."""
    await fail_dead_lettered(conn, message.id_of("attemptId"), reason, code=code)


async def process_attempt(
    ctx: WorkerContext,
    attempt_id: uuid.UUID,
    worker_id: str,
    *,
    leased: dict[str, Any] | None = None,
    read_at: float | None = None,
) -> Outcome:
    """Take the attempt as far as it can go now; safe to call again at any point. `leased` is the attempt
    as the read that delivered its message leased it to this worker, if it did, at `read_at`
    (`time.monotonic()`; None: just now)."""
    if leased is not None and read_at is not None and time.monotonic() - read_at > ctx.lease_seconds / 3:
        # Read ahead and left waiting for a slot for long: the lease may have lapsed meanwhile. The run's
        # keeper extends it a third of its length after the run begins, so a run begun within a third of it
        # after the read keeps it; a later one claims the attempt as committed instead.
        leased = None
    return await AttemptRun(ctx, attempt_id, worker_id).run(leased)


class AttemptRun:
    """One worker's step on one attempt: claim, enrol, verify, sync, and on the way out retry or fail.

    The run carries the attempt as it last saw it (`attempt`): loaded once, by the claim (or taken from
    the read that leased it), and replaced by what each of its own moves returns. It is loaded again only
    where a change this run did not make must be seen:

    * a move refused as stale (`_fenced`): the lease keeps other workers out, but a supersede (a new
      attempt for the reflection) or a cancel still moves the attempt; the move is tried once more on the
      attempt as committed, and the lease still fences it;
    * after a re-enrolment (`_enrol_again`): the new attempt's insert superseded this one in the same
      transaction;
    * before a retry (`retry`): the backoff runs on the database's clock.
    """

    def __init__(self, ctx: WorkerContext, attempt_id: uuid.UUID, worker_id: str) -> None:
        self.ctx = ctx
        self.attempt_id = attempt_id
        self.worker_id = worker_id
        self.actor = f"worker:{worker_id}"
        self._attempt: AttemptRow | None = None
        #: The voice as the completion's transaction read it for its manifest, when this run completed it.
        self._voice_read: dict[str, Any] | None = None
        #: What the likeness probe reads of the attempt, as the read that leased it to this run handed it; None
        #: when the run claimed it itself or has since recorded a new samples' print (the probe reads then).
        self._probe_inputs: likeness.ProbeInputs | None = None

    @property
    def attempt(self) -> AttemptRow:
        """The attempt as this run last saw it (set by the claim)."""
        if self._attempt is None:
            raise RuntimeError("the attempt is read by the claim")
        return self._attempt

    async def run(self, leased: dict[str, Any] | None = None) -> Outcome:
        """Take the attempt as far as it can go now (`process_attempt`)."""
        waiting = await self.claim(leased)
        if waiting is not None:
            return waiting
        if self.attempt.status in OPEN_STATUSES or self.attempt.status == AttemptStatus.SUPERSEDED:
            try:
                async with self._lease_kept() as lease:
                    await self.enrol(lease)
                    await self.verify()
            except (TransientProviderError, UnknownOutcomeError) as exc:
                return await self.retry(exc)
            except PermanentProviderError as exc:
                return await self.fail(_permanent_code(exc), exc.safe_message)
            except _Failed as exc:
                return await self.fail(exc.code, exc.message)
            except (LeaseLost, StaleVersion):
                # Another worker owns the attempt now (our lease expired); its result stands.
                log.warning("attempt %s: lease lost to another worker", self.attempt_id)
                return Outcome(status="lease_lost")
        published = self.attempt.status == AttemptStatus.READY and self.attempt.is_active
        if published and self.attempt.runtime_status != RuntimeStatus.SYNCED:
            await self.sync()
        if published and self.attempt.runtime_status == RuntimeStatus.SYNCED:
            await self.write_manifest()
        return Outcome(status=self.attempt.status)

    async def claim(self, leased: dict[str, Any] | None = None) -> Outcome | None:  # noqa: PLR0911 - one return per state the attempt can be found in
        """Lease the attempt to this worker (unless its read already did): None when the run goes on, else
        why there is nothing to do now."""
        if leased is not None:
            row = as_row(leased)
            if row.id == self.attempt_id and row.lease_owner == self.worker_id:
                self._attempt = row
                self._probe_inputs = likeness.leased_probe_inputs(leased)
                failpoint("after_claim")
                return None
        lease = {"lease_owner": self.worker_id, "lease_seconds": self.ctx.lease_seconds}
        async with self.ctx.db.service_transaction() as conn:
            try:
                attempt, now = await attempts.load(conn, self.attempt_id)
            except NotFound:
                return Outcome(status="missing")
            self._attempt = attempt
            if attempt.status == AttemptStatus.QUEUED:
                if attempt.next_retry_at is not None and attempt.next_retry_at > now:
                    return Outcome(status=attempt.status, retry_at=attempt.next_retry_at)
                move: dict[str, Any] = {"status": AttemptStatus.PROCESSING}
            elif attempt.status in {AttemptStatus.PROCESSING, AttemptStatus.VERIFYING} or (
                attempt.status == AttemptStatus.SUPERSEDED and attempt.lease_owner is not None
            ):
                if attempt.leased_to(self.worker_id, now):
                    return None
                if attempt.lease_expires_at is not None and attempt.lease_expires_at > now:
                    # Someone is working on it; look again when their lease would have run out.
                    return Outcome(status=attempt.status, retry_at=attempt.lease_expires_at + timedelta(seconds=1))
                if attempt.status == AttemptStatus.SUPERSEDED:
                    # Its worker died after the supersede: nobody waits for this result any more.
                    return Outcome(status=attempt.status)
                move = {}
            else:
                return None if attempt.status == AttemptStatus.READY else Outcome(status=attempt.status)
            self._attempt = await attempts.transition(conn, attempt, self.actor, changes=lease, **move)
        failpoint("after_claim")
        return None

    async def enrol(self, lease: leases.Lease) -> None:
        """Create (or adopt) the provider voice and record it: `processing → verifying`. A `custom_voice_id`
        attempt names its voice instead; an attempt that already recorded one goes straight to `verify`. The
        provider is called only while `lease` holds (its owner's erasure looks for the voice once it has run out)."""
        if self.attempt.source == AttemptSource.CUSTOM_VOICE_ID:
            if self.attempt.provider_voice_id is None:
                raise _Failed("voice_id_missing", "The attempt names no provider voice.")
            return
        if self.attempt.provider_voice_id is not None:
            return
        found, voice, in_set = await self._fenced(self._key_and_inputs)
        rows = [row for row in found if row is not None]
        if len(rows) < len(found):
            raise _Failed("sample_missing", "The sample is gone (it may have expired); upload a new one.")
        enrolled = [await self._reference(row) for row in rows]
        refs = [one.ref for one in enrolled]
        provider = self.ctx.providers.get(self.attempt.provider, owner=self.attempt.owner_id)
        # A set's samples are measured for its quality report (`GET /api/voices/{id}/samples`).
        pairs = enumerate(zip(rows, refs, strict=True)) if in_set else iter(())
        members = [await set_members.member(self.ctx, row, ref, at) for at, (row, ref) in pairs]
        sent = await set_members.sendable(self.ctx, self.attempt.owner_id, provider.sample_rules, refs)
        first = rows[0]
        created = await lease.guard(
            lambda: provider.enrol(
                sent,
                name=voice.name,
                language=first.language or voice.language,
                # A transcript is of one recording: a set (sent apart or joined) has none that fits.
                transcript=first.transcript if len(rows) == 1 else None,
                key=self.attempt.enrolment_key,
            )
        )
        failpoint("after_provider_create")
        # Of what each sample is as stored (before any joining for the provider), for the voice's likeness.
        samples_print = await likeness.measure_samples(
            self.ctx, self.attempt, [ref.data for ref in refs], [one.voiceprint for one in enrolled]
        )
        # Verifying only from processing, as the run saw it before the call: a supersede that came during
        # the call still records the voice, and the late result is verified on the inactive attempt.
        status = AttemptStatus.VERIFYING if self.attempt.status == AttemptStatus.PROCESSING else None

        async def record(conn: Connection) -> None:
            await self._move(conn, status=status, changes=_voice_changes(created))
            for member in members:
                await attempts.record_measures(conn, self.attempt.id, member)
            await likeness.record_samples_print(conn, self.attempt.id, samples_print)
            # Sends no text: written to the ledger, once per enrolment key, and counted against no quota.
            enrolment = ledger.Call(
                owner_id=self.attempt.owner_id,
                provider=self.attempt.provider,
                model=self.attempt.provider_target_model,
                kind=ledger.UsageKind.ENROLMENT,
                work_id=self.attempt.id,
                call_key=self.attempt.enrolment_key or str(self.attempt.id),
                characters=0,
            )
            await ledger.record_unmetered(conn, enrolment)

        # The print the lease's read handed over is not this one: the probe reads the attempt as now committed.
        self._probe_inputs = None
        await self._fenced(record)
        failpoint("after_db_write")

    async def _key_and_inputs(self, conn: Connection) -> tuple[list[sample_rows.SampleRow | None], VoiceRow, bool]:
        """In one transaction: the attempt's enrolment key stored (before the provider sees anything, so a
        retry after a crash looks this key up first) and its samples (its set, else its one sample) and
        voice read; and whether it has a set."""
        sample_id = self.attempt.sample_id
        if sample_id is None:
            raise _Failed("sample_missing", "The attempt has no sample (it may have expired); upload a new one.")
        if not self.attempt.enrolment_key:
            # The key an erasure looks up for an attempt that had not stored one yet (voicegate.erasure_targets).
            await self._move(conn, changes={"enrolment_key": f"vg-{self.attempt.id}"})
        in_set = [member.sample_id for member in await attempts.sample_set(conn, self.attempt.id)]
        rows = [await sample_rows.sample_row(conn, one) for one in in_set or [sample_id]]
        return rows, await voice_rows.voice_row(conn, self.attempt.voice_id), bool(in_set)

    async def _reference(self, sample: sample_rows.SampleRow) -> EnrolmentSample:
        """What the provider is sent of one sample, with its print (`SampleCheck.enrolment_sample`), or why the
        attempt fails."""
        try:
            return await SampleCheck(self.ctx, sample, actor=self.actor).enrolment_sample(self.attempt.provider)
        except AudioRejected as exc:
            raise _Failed(exc.code, str(exc)) from exc
        except StoredObjectAltered as exc:
            # Not sent, and not retried: the same file would fail the same way.
            message = "The stored sample has changed since voicegate checked it; upload a new one."
            raise _Failed(exc.code, message) from exc
        except SampleGone as exc:
            raise _Failed("sample_missing", "The sample was deleted; upload a new one.") from exc

    async def verify(self) -> None:
        """Check the voice exists at the provider, then `ready` (+ runtime `syncing` when active)."""
        attempt = self.attempt
        if attempt.provider_voice_id is None:
            raise _Failed("voice_id_missing", "The attempt names no provider voice.")
        provider = self.ctx.providers.get(attempt.provider)
        try:
            found = await provider.get(attempt.provider_voice_id)
        except VoiceNotFoundError as exc:
            if attempt.source in _NOT_ENROLLED:
                raise _Failed("voice_not_found", "The provider does not know this voice.") from exc
            await self._enrol_again()
            return
        changes = _voice_changes(found) if attempt.source == AttemptSource.CUSTOM_VOICE_ID else {}
        if self.ctx.likeness_probe and attempt.likeness is None and attempt.likeness_error is None:
            # Before `ready`, still under the lease, and recorded by the completion below: the voice is
            # published with its likeness, and a step repeated once it is ready finds it recorded (a probe the
            # provider could not speak is not retried). One that crashes before the completion probes again.
            judged = await likeness.probe(self.ctx, msgspec.structs.replace(attempt, **changes), self._probe_inputs)
            changes |= judged or {}
        # Verified, ready, synced and the preview asked for in one call: each move is still its own event,
        # and a crash cannot leave half of them. Fenced by the lease alone, so it needs no fresh version. The
        # voice is read for its manifest in the same round trip and transaction, after the completion; with
        # the completions of the worker's other attempts that reach it at the same moment.
        item = attempts.completion(attempt.id, self.actor, lease_owner=self.worker_id, changes=changes)
        item["voice_id"] = attempt.voice_id
        completed, read = await self.ctx.db.grouped((attempts.COMPLETE, manifest.READ_VOICES), item)
        self._attempt = as_row(completed[0])
        self._voice_read = read[0] if read else None

    async def _enrol_again(self) -> None:
        """The provider does not know the voice this attempt made or reuses (deleted since, or a reference
        that died): enrol it again from the sample through a new attempt, which jobs waiting for this one
        follow, and fail this one saying so. Without a sample it just fails, saying why."""

        async def heal_and_fail(conn: Connection) -> None:
            attempt = self.attempt
            try:
                new = await portability.heal(
                    conn,
                    attempt.voice_id,
                    provider=attempt.provider,
                    provider_voice_id=attempt.provider_voice_id or "",
                    reason="voice_not_found",
                    actor=self.actor,
                    replacing=attempt.id,
                )
            except portability.CannotReenrol as refused:
                code, message = refused.code, f"The provider does not know this voice. {refused.message}"
            else:
                await synthesis_jobs.follow_attempt(conn, attempt.voice_id, new.id)
                code = "voice_not_found"
                message = f"The provider does not know this voice; attempt {new.id} enrols it again."
                # The new attempt's insert may have superseded this one, in this transaction.
                self._attempt, _ = await attempts.load(conn, attempt.id)
            await self._move(conn, status=AttemptStatus.FAILED, changes=_error(code, message))

        await self._fenced(heal_and_fail)

    async def sync(self) -> None:
        """Finish the runtime sync of a ready attempt (after a crash between ready and synced): `syncing →
        synced` once the voice row the runtime reads carries the attempt's provider voice; queue the
        preview in the same transaction when one is required."""

        async def sync(conn: Connection) -> None:
            if self.attempt.runtime_status in {RuntimeStatus.PENDING, RuntimeStatus.SYNC_FAILED}:
                await self._move(conn, runtime=RuntimeStatus.SYNCING, fenced=False)
            voice = await voice_rows.voice_row(conn, self.attempt.voice_id)
            in_sync = (
                voice.provider_voice_id == self.attempt.provider_voice_id
                and voice.tts_provider == self.attempt.provider
            )
            synced = RuntimeStatus.SYNCED if in_sync else RuntimeStatus.SYNC_FAILED
            attempt = await self._move(conn, runtime=synced, fenced=False)
            if attempt.runtime_status == RuntimeStatus.SYNCED and attempt.preview_status == PreviewStatus.PENDING:
                await queues.send(conn, queues.PREVIEW, queues.preview_message(attempt.id, attempt.version))

        await self._fenced(sync)

    async def write_manifest(self) -> None:
        """The voice's manifest, now that its row carries this attempt's provider voice (from the voice as the
        completion's transaction read it, when this run completed the attempt)."""
        attempt = self.attempt
        if attempt.provider_voice_id is None:
            return
        await manifest.write_manifest(
            self.ctx.db,
            self.ctx.storage,
            voice_id=attempt.voice_id,
            provider=attempt.provider,
            provider_voice_id=attempt.provider_voice_id,
            read=self._voice_read,
        )

    async def retry(self, exc: Exception) -> Outcome:
        """A transient provider failure: back to `queued` with a backoff, or `failed` once the retries are
        spent (or the attempt was superseded meanwhile)."""
        safe = getattr(exc, "safe_message", "The voice provider is unavailable.")
        async with self.ctx.db.service_transaction() as conn:
            # Read again: the backoff runs on the database's clock, and a supersede during the provider
            # call ends the attempt instead.
            self._attempt, now = await attempts.load(conn, self.attempt_id)
            attempt = self.attempt
            if attempt.retry_count >= attempt.max_retries or attempt.status == AttemptStatus.SUPERSEDED:
                message = f"{safe} (gave up after {attempt.retry_count + 1} tries)"
                failed = await self._move(
                    conn, status=AttemptStatus.FAILED, changes=_error("provider_unavailable", message)
                )
                return Outcome(status=failed.status)
            delay = retry_delay(
                attempt.retry_count + 1,
                base_seconds=self.ctx.retry_base_seconds,
                max_seconds=self.ctx.retry_max_seconds,
            )
            retry_at = now + timedelta(seconds=delay)
            changes = {"increment_retry": True, "next_retry_at": retry_at.isoformat()}
            await self._move(conn, status=AttemptStatus.QUEUED, changes=changes | _error("provider_unavailable", safe))
        log.info("attempt %s: transient provider failure, retry at %s", self.attempt_id, retry_at.isoformat())
        return Outcome(status=AttemptStatus.QUEUED, retry_at=retry_at)

    async def fail(self, code: str, message: str) -> Outcome:
        """Fail the attempt for good with a stable code and a message safe to show."""

        async def fail(conn: Connection) -> None:
            await self._move(conn, status=AttemptStatus.FAILED, changes=_error(code, message))

        try:
            await self._fenced(fail)
        except (LeaseLost, StaleVersion):
            return Outcome(status="lease_lost")
        return Outcome(status=self.attempt.status)

    def _lease_kept(self) -> AbstractAsyncContextManager[leases.Lease]:
        """Extend the lease every third of its length while the body (a provider call) runs."""

        async def extend() -> None:
            async with self.ctx.db.service_statement() as conn:
                await attempts.extend_lease(conn, self.attempt_id, self.worker_id, self.ctx.lease_seconds)

        return leases.kept(extend, self.ctx.lease_seconds / 3, f"attempt {self.attempt_id}")

    async def _move(self, conn: Connection, *, fenced: bool = True, **move: Any) -> AttemptRow:
        """One transition from the attempt as this run last saw it, on `conn`: fenced by this worker's lease
        (`fenced`) or, once the lease is gone (a ready attempt's sync), by the version alone."""
        lease_owner = self.worker_id if fenced else None
        self._attempt = await attempts.transition(conn, self.attempt, self.actor, lease_owner=lease_owner, **move)
        return self._attempt

    async def _fenced(self, body: Callable[[Connection], Awaitable[_T]]) -> _T:
        """`body` on a service transaction, from the attempt as this run last saw it. The lease keeps other
        workers out but not a supersede or a cancel, which move the attempt (a new version): when one came
        in between, `body` runs once more on the attempt as committed now, fenced as before."""
        try:
            async with self.ctx.db.service_transaction() as conn:
                return await body(conn)
        except StaleVersion:
            async with self.ctx.db.service_transaction() as conn:
                self._attempt, _ = await attempts.load(conn, self.attempt_id)
                return await body(conn)


def _voice_changes(voice: ProviderVoice) -> dict[str, Any]:
    return {
        "provider_voice_id": voice.voice_id,
        "provider_target_model": voice.target_model,
        "provider_request_id": voice.request_id,
        "provider_metadata": voice.metadata,
    }


def _error(code: str, message: str) -> dict[str, Any]:
    """The changes that record why an attempt stopped: a stable code and a message safe to show."""
    return {"last_error_code": code, "last_error_message": message}


def _permanent_code(exc: PermanentProviderError) -> str:
    return "provider_rejected" if exc.provider_code is None else f"provider_{exc.provider_code}"[:60]


async def fail_dead_lettered(conn: Connection, attempt_id: uuid.UUID, reason: str, *, code: str) -> None:
    """Fail an attempt whose message was dead-lettered with `code` (`storage_unavailable` when it waited out
    Storage too long), unless it already ended (same transaction)."""
    try:
        attempt, _ = await attempts.load(conn, attempt_id)
    except NotFound:
        return
    if attempt.status in OPEN_STATUSES:
        await attempts.fail(conn, attempt, "dead_letter", code, reason[:500])


async def process_reflection_attempt(
    ctx: WorkerContext, reflection_id: uuid.UUID | None, attempt_id: uuid.UUID, worker_id: str
) -> Outcome:
    """`process_attempt` for the internal route: 404 unless the attempt belongs to the reflection
    (`None` for an attempt made without one)."""
    async with ctx.db.service_transaction() as conn:
        attempt, _ = await attempts.load(conn, attempt_id)
    if attempt.reflection_id != reflection_id:
        raise NotFound(f"attempt {attempt_id} not found")
    return await process_attempt(ctx, attempt_id, worker_id)
