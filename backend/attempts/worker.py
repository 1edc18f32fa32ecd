"""`VOICE_CLONE_PROCESS`: drive one attempt from `queued` to `ready` + `synced`, resumably.

Each call looks at the attempt as committed and takes the next step; every step is one transition
through the SQL function, fenced by the worker's lease (or the version once the lease is gone), so
a step repeated after a crash, a redelivered message or a second worker does no harm:

    queued ─claim→ processing ─enrol→ verifying ─verify→ ready + syncing ─sync→ synced (+ preview queued)

(verify, ready and sync are one call once the provider has confirmed the voice).

The enrolment key is stored before the provider is called, and the adapters look it up before any
create, so one attempt never makes two provider voices. A transient provider failure puts the attempt
back to `queued` with a backoff (until `max_retries`); a permanent one fails it with a safe message.
Once synced, the voice's manifest (`voices.manifest`) is written; a step that finds the attempt synced
writes it again, so a manifest lost to a Storage failure is written on the message's next delivery.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

from backend import leases, queues
from backend.attempts import service as attempts
from backend.attempts.service import AttemptRow
from backend.audio.errors import AudioRejected
from backend.context import Lifecycle, Outcome
from backend.db.connection import Connection
from backend.db.units import service_statement, service_transaction
from backend.errors import LeaseLost, NotFound, StaleVersion, StoredObjectAltered
from backend.failpoints import failpoint
from backend.providers.base import ProviderVoice
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.records import samples, voices
from backend.samples import check as sample_check
from backend.synthesis import heal
from backend.voices import manifest, portability

log = logging.getLogger(__name__)


#: The reflection segment of the internal route that stands for "no reflection" (an attempt made
#: without one, e.g. by finalize or for a synthesis job).
NO_REFLECTION = uuid.UUID(int=0)


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


def lease_on_read(ctx: Lifecycle, worker_id: str) -> Callable[[Connection, int, int], Awaitable[list[dict[str, Any]]]]:
    """The clone queue's reader: pgmq's read that also leases each due `queued` attempt it delivers to
    this worker, in the read's transaction (`process_attempt` then needs no claim of its own)."""

    async def read(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        return await attempts.read_and_lease(
            conn, queues.CLONE, vt=vt, qty=qty, lease_owner=worker_id, lease_seconds=ctx.lease_seconds
        )

    return read


async def process_attempt(
    ctx: Lifecycle, attempt_id: uuid.UUID, worker_id: str, *, leased: dict[str, Any] | None = None
) -> Outcome:
    """Take the attempt as far as it can go now; safe to call again at any point. `leased` is the attempt
    as the read that delivered its message leased it to this worker, if it did."""
    actor = f"worker:{worker_id}"
    claimed = await _claim(ctx, attempt_id, worker_id, actor, leased)
    if isinstance(claimed, Outcome):
        return claimed
    attempt = claimed
    if attempt.status in attempts.OPEN_STATUSES or attempt.status == "superseded":
        try:
            async with _lease_kept(ctx, attempt.id, worker_id):
                attempt = await _enrol_and_verify(ctx, attempt, worker_id, actor)
        except (TransientProviderError, UnknownOutcomeError) as exc:
            return await _schedule_retry(ctx, attempt.id, worker_id, actor, exc)
        except PermanentProviderError as exc:
            return await _fail(ctx, attempt.id, worker_id, actor, code=_permanent_code(exc), message=exc.safe_message)
        except _Failed as exc:
            return await _fail(ctx, attempt.id, worker_id, actor, code=exc.code, message=exc.message)
        except (LeaseLost, StaleVersion):
            # Another worker owns the attempt now (our lease expired); its result stands.
            log.warning("attempt %s: lease lost to another worker", attempt.id)
            return Outcome(status="lease_lost")
    if attempt.status == "ready" and attempt.is_active and attempt.runtime_status != "synced":
        attempt = await _sync_runtime(ctx, attempt.id, actor)
    if attempt.status == "ready" and attempt.is_active and attempt.runtime_status == "synced":
        await _write_manifest(ctx, attempt)
    return Outcome(status=attempt.status)


async def _write_manifest(ctx: Lifecycle, attempt: AttemptRow) -> None:
    """The voice's manifest, now that its row carries this attempt's provider voice."""
    if attempt.provider_voice_id is None:
        return
    await manifest.write_manifest(
        ctx.pool,
        ctx.storage,
        voice_id=attempt.voice_id,
        provider=attempt.provider,
        provider_voice_id=attempt.provider_voice_id,
        sample_id=attempt.sample_id,
    )


async def _claim(  # noqa: PLR0911 - one return per state the attempt can be found in
    ctx: Lifecycle, attempt_id: uuid.UUID, worker_id: str, actor: str, leased: dict[str, Any] | None = None
) -> AttemptRow | Outcome:
    """Lease the attempt to this worker (unless its read already did), or say why there is nothing to do now."""
    if leased is not None:
        attempt = attempts.as_row(leased)
        if attempt.id == attempt_id and attempt.lease_owner == worker_id:
            failpoint("after_claim")
            return attempt
    lease = {"lease_owner": worker_id, "lease_seconds": ctx.lease_seconds}
    async with service_transaction(ctx.pool) as conn:
        try:
            attempt, now = await attempts.load(conn, attempt_id)
        except NotFound:
            return Outcome(status="missing")
        if attempt.status == "queued":
            if attempt.next_retry_at is not None and attempt.next_retry_at > now:
                return Outcome(status="queued", retry_at=attempt.next_retry_at)
            claimed = await attempts.transition(conn, attempt, actor, status="processing", changes=lease)
        elif attempt.status in {"processing", "verifying"} or (
            attempt.status == "superseded" and attempt.lease_owner is not None
        ):
            if attempt.leased_to(worker_id, now):
                return attempt
            if attempt.lease_expires_at is not None and attempt.lease_expires_at > now:
                # Someone is working on it; look again when their lease would have run out.
                return Outcome(status=attempt.status, retry_at=attempt.lease_expires_at + timedelta(seconds=1))
            if attempt.status == "superseded":
                # Its worker died after the supersede: nobody waits for this result any more.
                return Outcome(status="superseded")
            claimed = await attempts.transition(conn, attempt, actor, changes=lease)
        else:
            return attempt if attempt.status == "ready" else Outcome(status=attempt.status)
    failpoint("after_claim")
    return claimed


def _lease_kept(ctx: Lifecycle, attempt_id: uuid.UUID, worker_id: str) -> AbstractAsyncContextManager[None]:
    """Extend the lease every third of its length while the body (a provider call) runs."""

    async def extend() -> None:
        async with service_transaction(ctx.pool) as conn:
            await attempts.extend_lease(conn, attempt_id, worker_id, ctx.lease_seconds)

    return leases.kept(extend, ctx.lease_seconds / 3, f"attempt {attempt_id}")


async def _step(ctx: Lifecycle, attempt_id: uuid.UUID, worker_id: str, actor: str, **move: Any) -> AttemptRow:
    """One leased transition on the attempt as committed now (the lease, not a stale version, fences)."""
    async with service_transaction(ctx.pool) as conn:
        attempt, _ = await attempts.load(conn, attempt_id)
        return await attempts.transition(conn, attempt, actor, lease_owner=worker_id, **move)


async def _enrol_and_verify(ctx: Lifecycle, attempt: AttemptRow, worker_id: str, actor: str) -> AttemptRow:
    if attempt.source == "custom_voice_id":
        if attempt.provider_voice_id is None:
            raise _Failed("voice_id_missing", "The attempt names no provider voice.")
    elif attempt.provider_voice_id is None:
        attempt = await _enrol(ctx, attempt, worker_id, actor)
    return await _verify(ctx, attempt, worker_id, actor)


async def _enrol(ctx: Lifecycle, attempt: AttemptRow, worker_id: str, actor: str) -> AttemptRow:
    """Create (or adopt) the provider voice and record it: `processing → verifying`."""
    attempt, sample, voice = await _keyed_sample_and_voice(ctx, attempt, worker_id, actor)
    try:
        ref = await sample_check.enrolment_sample(ctx, sample, attempt.provider, actor=actor)
    except AudioRejected as exc:
        raise _Failed(exc.code, str(exc)) from exc
    except StoredObjectAltered as exc:
        # Not sent, and not retried: the same file would fail the same way.
        raise _Failed(exc.code, "The stored sample has changed since voicegate checked it; upload a new one.") from exc
    except sample_check.SampleGone as exc:
        raise _Failed("sample_missing", "The sample was deleted; upload a new one.") from exc
    provider = ctx.providers.get(attempt.provider, owner=attempt.owner_id)
    created = await provider.enroll(
        [ref],
        name=voice.name,
        language=sample.language or voice.language,
        transcript=sample.transcript,
        key=attempt.enrolment_key,
    )
    failpoint("after_provider_create")
    status = "verifying" if attempt.status == "processing" else None
    recorded = await _step(ctx, attempt.id, worker_id, actor, status=status, changes=_voice_changes(created))
    failpoint("after_db_write")
    return recorded


def _voice_changes(voice: ProviderVoice) -> dict[str, Any]:
    return {
        "provider_voice_id": voice.voice_id,
        "provider_target_model": voice.target_model,
        "provider_request_id": voice.request_id,
        "provider_metadata": voice.metadata,
    }


async def _keyed_sample_and_voice(
    ctx: Lifecycle, attempt: AttemptRow, worker_id: str, actor: str
) -> tuple[AttemptRow, samples.SampleRow, voices.VoiceRow]:
    """In one transaction: the attempt's enrolment key stored (before the provider sees anything, so a retry
    after a crash looks this key up first) and its sample and voice read."""
    sample_id = attempt.sample_id
    if sample_id is None:
        raise _Failed("sample_missing", "The attempt has no sample (it may have expired); upload a new one.")
    async with service_transaction(ctx.pool) as conn:
        if not attempt.enrolment_key:
            current, _ = await attempts.load(conn, attempt.id)
            changes = {"enrolment_key": f"vg-{attempt.id}"}
            attempt = await attempts.transition(conn, current, actor, lease_owner=worker_id, changes=changes)
        sample = await samples.sample_row(conn, sample_id)
        voice = await voices.voice_row(conn, attempt.voice_id)
    if sample is None:
        raise _Failed("sample_missing", "The sample is gone (it may have expired); upload a new one.")
    return attempt, sample, voice


async def _verify(ctx: Lifecycle, attempt: AttemptRow, worker_id: str, actor: str) -> AttemptRow:
    """Check the voice exists at the provider, then `ready` (+ runtime `syncing` when active)."""
    if attempt.provider_voice_id is None:
        raise _Failed("voice_id_missing", "The attempt names no provider voice.")
    provider = ctx.providers.get(attempt.provider)
    try:
        found = await provider.get(attempt.provider_voice_id)
    except VoiceNotFoundError as exc:
        if attempt.source in {"custom_voice_id", "provider_churn"}:
            raise _Failed("voice_not_found", "The provider does not know this voice.") from exc
        return await _enrol_again(ctx, attempt, worker_id, actor)
    changes = _voice_changes(found) if attempt.source == "custom_voice_id" else None
    # Verified, ready, synced and the preview asked for in one call: each move is still its own event, and
    # a crash cannot leave half of them.
    async with service_statement(ctx.pool) as conn:
        return await attempts.complete(conn, attempt.id, actor, lease_owner=worker_id, changes=changes)


async def _enrol_again(ctx: Lifecycle, attempt: AttemptRow, worker_id: str, actor: str) -> AttemptRow:
    """The provider does not know the voice this attempt made or reuses (deleted since, or a reference
    that died): enrol it again from the sample through a new attempt, which jobs waiting for this one
    follow, and fail this one saying so. Without a sample it just fails, saying why."""
    lost = attempt.provider_voice_id or ""
    async with service_transaction(ctx.pool) as conn:
        current, _ = await attempts.load(conn, attempt.id)
        try:
            new = await portability.heal(
                conn,
                current.voice_id,
                provider=current.provider,
                provider_voice_id=lost,
                reason="voice_not_found",
                actor=actor,
                replacing=current.id,
            )
        except portability.CannotReenrol as refused:
            code, message = refused.code, f"The provider does not know this voice. {refused.message}"
        else:
            await heal.follow(conn, current.voice_id, new.id)
            code, message = (
                "voice_not_found",
                f"The provider does not know this voice; attempt {new.id} enrols it again.",
            )
            current, _ = await attempts.load(conn, current.id)  # the new attempt may have superseded it
        return await attempts.fail(conn, current, actor, code, message, lease_owner=worker_id)


async def _sync_runtime(ctx: Lifecycle, attempt_id: uuid.UUID, actor: str) -> AttemptRow:
    """Finish the runtime sync of a ready attempt (after a crash between ready and synced): `syncing →
    synced` once the voice row the runtime reads carries the attempt's provider voice; queue the preview
    in the same transaction when one is required."""
    async with service_transaction(ctx.pool) as conn:
        attempt, _ = await attempts.load(conn, attempt_id)
        if attempt.runtime_status in {"pending", "sync_failed"}:
            attempt = await attempts.transition(conn, attempt, actor, runtime="syncing")
        voice = await voices.voice_row(conn, attempt.voice_id)
        in_sync = voice.provider_voice_id == attempt.provider_voice_id and voice.tts_provider == attempt.provider
        attempt = await attempts.transition(conn, attempt, actor, runtime="synced" if in_sync else "sync_failed")
        await _queue_preview(conn, attempt)
        return attempt


async def _queue_preview(conn: Connection, attempt: AttemptRow) -> None:
    """Ask for the preview of a freshly synced attempt that needs one, in the transaction that synced it."""
    if attempt.runtime_status == "synced" and attempt.preview_status == "pending":
        await queues.send(conn, queues.PREVIEW, queues.preview_message(attempt.id, attempt.version))


async def _schedule_retry(ctx: Lifecycle, attempt_id: uuid.UUID, worker_id: str, actor: str, exc: Exception) -> Outcome:
    safe = getattr(exc, "safe_message", "The voice provider is unavailable.")
    async with service_transaction(ctx.pool) as conn:
        attempt, now = await attempts.load(conn, attempt_id)
        if attempt.retry_count >= attempt.max_retries or attempt.status == "superseded":
            message = f"{safe} (gave up after {attempt.retry_count + 1} tries)"
            failed = await attempts.fail(conn, attempt, actor, "provider_unavailable", message, lease_owner=worker_id)
            return Outcome(status=failed.status)
        retry_at = now + timedelta(seconds=ctx.retry_delay(attempt.retry_count + 1))
        await attempts.transition(
            conn,
            attempt,
            actor,
            status="queued",
            lease_owner=worker_id,
            changes={
                "increment_retry": True,
                "next_retry_at": retry_at.isoformat(),
                "last_error_code": "provider_unavailable",
                "last_error_message": safe,
            },
        )
    log.info("attempt %s: transient provider failure, retry at %s", attempt_id, retry_at.isoformat())
    return Outcome(status="queued", retry_at=retry_at)


async def _fail(
    ctx: Lifecycle, attempt_id: uuid.UUID, worker_id: str, actor: str, *, code: str, message: str
) -> Outcome:
    try:
        async with service_transaction(ctx.pool) as conn:
            attempt, _ = await attempts.load(conn, attempt_id)
            failed = await attempts.fail(conn, attempt, actor, code, message, lease_owner=worker_id)
    except (LeaseLost, StaleVersion):
        return Outcome(status="lease_lost")
    return Outcome(status=failed.status)


def _permanent_code(exc: PermanentProviderError) -> str:
    return "provider_rejected" if exc.provider_code is None else f"provider_{exc.provider_code}"[:60]


async def fail_dead_lettered(conn: Connection, attempt_id: uuid.UUID, reason: str) -> None:
    """Fail an attempt whose message was dead-lettered, unless it already ended (same transaction)."""
    try:
        attempt, _ = await attempts.load(conn, attempt_id)
    except NotFound:
        return
    if attempt.status in attempts.OPEN_STATUSES:
        await attempts.fail(conn, attempt, "dead_letter", "dead_lettered", reason[:500])


async def process_reflection_attempt(
    ctx: Lifecycle, reflection_id: uuid.UUID | None, attempt_id: uuid.UUID, worker_id: str
) -> Outcome:
    """`process_attempt` for the internal route: 404 unless the attempt belongs to the reflection
    (`None` for an attempt made without one)."""
    async with service_transaction(ctx.pool) as conn:
        attempt, _ = await attempts.load(conn, attempt_id)
    if attempt.reflection_id != reflection_id:
        raise NotFound(f"attempt {attempt_id} not found")
    return await process_attempt(ctx, attempt_id, worker_id)
