"""`VOICE_PREVIEW`: speak a short phrase in the new voice, mark it with the watermark and sign it with its C2PA
manifest (which covers the marked audio), store it in `voice-previews`; preview `ready`.

The user then listens and completes the preview through the API, which opens the launch gate.
Safe to repeat: the final move is version-fenced and the object (with its digest) is stored in that
move's transaction, so of two concurrent generations exactly one records `ready` and stores its file.
A preview that cannot be signed is never stored: the preview goes back to `pending` with
`provenance_failed`, as after a provider's refusal (`language_not_supported` for a voice in a language
the provider cannot speak, such as a `local` voice enrolled in Chinese before the engine spoke English only).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from backend import queues
from backend.audio.render import marked_preview
from backend.clone import likeness
from backend.clone.types import LikenessSource
from backend.context import Outcome, WorkerContext
from backend.db.connection import Connection
from backend.domain.attempts import AttemptRow, AttemptStatus, PreviewStatus, RuntimeStatus
from backend.errors import LanguageNotSupported, NotFound, ProvenanceFailed, QuotaExceeded, StaleVersion
from backend.policy.speaker import enrolled_voice
from backend.provenance import SynthesisClaim
from backend.providers.base import ProviderVoice
from backend.providers.errors import PermanentProviderError, UnsupportedLanguageError
from backend.records import attempts, voice_rows
from backend.storage import integrity, paths
from backend.usage import ledger

log = logging.getLogger(__name__)
PREVIEW_TEXT = "Hello! This is a preview of your new voice. If it sounds like you, you are all set."
ACTOR = "preview"


def preview_handler(ctx: WorkerContext) -> queues.Handler:
    """The preview queue's handler: each message's attempt given its preview (`process_preview`)."""

    async def handle(message: queues.Message) -> datetime | None:
        return (await process_preview(ctx, message.id_of("attemptId"))).retry_at

    return handle


async def process_preview(ctx: WorkerContext, attempt_id: uuid.UUID) -> Outcome:  # noqa: PLR0911 - one per state
    """Generate the preview of an active, ready, synced attempt whose preview is still to be made."""
    async with ctx.db.service_transaction() as conn:
        try:
            attempt, _ = await attempts.load(conn, attempt_id)
        except NotFound:
            return Outcome(status="missing")
        if not (
            attempt.is_active
            and attempt.status == AttemptStatus.READY
            and attempt.runtime_status == RuntimeStatus.SYNCED
        ):
            return Outcome(status=attempt.preview_status)
        if attempt.preview_status == PreviewStatus.PENDING:
            attempt = await attempts.transition(conn, attempt, ACTOR, preview=PreviewStatus.GENERATING)
        elif attempt.preview_status != PreviewStatus.GENERATING:
            return Outcome(status=attempt.preview_status)
        consent_id, consent_version = await voice_rows.consent_of(conn, attempt.voice_id)
        voice = enrolled_voice(attempt)
        if voice is None:
            return Outcome(status=attempt.preview_status)
        reserved = await _reserve(ctx, conn, attempt, voice)
    if isinstance(reserved, QuotaExceeded):
        return await _not_made(ctx, attempt_id, QuotaExceeded.code, reserved.detail)
    try:
        provider = ctx.providers.get(attempt.provider, owner=attempt.owner_id)
        async with ctx.ledger.charge(reserved) as charge:
            spoken = await provider.synthesize(voice, PREVIEW_TEXT, meter=charge)
    except QuotaExceeded as exc:
        # A resend the quota refused: never sent.
        return await _not_made(ctx, attempt_id, QuotaExceeded.code, exc.detail)
    except UnsupportedLanguageError as exc:
        return await _not_made(ctx, attempt_id, LanguageNotSupported.code, exc.safe_message)
    except PermanentProviderError as exc:
        return await _not_made(ctx, attempt_id, "preview_failed", exc.safe_message)
    audio, mime_type = await ctx.cpu.run(attempt.owner_id, marked_preview, spoken.audio)
    claim = SynthesisClaim(
        voice_id=attempt.voice_id,
        provider=attempt.provider,
        model=spoken.model or attempt.provider_target_model,
        consent_id=consent_id,
        consent_version=consent_version,
    )
    try:
        signed = await ctx.cpu.run(attempt.owner_id, ctx.signer.sign_audio, audio, mime_type, claim)
    except ProvenanceFailed as exc:
        log.exception("attempt %s: preview %s", attempt_id, exc.detail)
        return await _not_made(ctx, attempt_id, ProvenanceFailed.code, ProvenanceFailed().detail)
    path = paths.preview(attempt.owner_id, attempt.id)
    try:
        async with ctx.db.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
            ready = await attempts.transition(
                conn,
                attempt,
                ACTOR,
                preview=PreviewStatus.READY,
                changes={"provider_metadata": {"preview": {"bucket": paths.PREVIEWS, "path": path}}},
            )
            await integrity.write(conn, ctx.storage, paths.PREVIEWS, path, signed, content_type=mime_type)
    except StaleVersion:
        # Superseded, or another generation finished first: what is committed stands.
        log.info("attempt %s: preview result not recorded, the attempt moved on", attempt_id)
        return Outcome(status="stale")
    # VOICEGATE_LIKENESS_PROBE=off: the preview, now stored, is what the voice's likeness is judged on.
    await likeness.judge_render(
        ctx,
        owner_id=attempt.owner_id,
        voice_id=attempt.voice_id,
        voice=voice,
        spoken=[spoken.audio],
        source=LikenessSource.PREVIEW,
    )
    return Outcome(status=ready.preview_status)


async def _reserve(
    ctx: WorkerContext, conn: Connection, attempt: AttemptRow, voice: ProviderVoice
) -> ledger.Call | QuotaExceeded:
    """Reserve the preview's first send on `conn`'s transaction, which commits before the provider is sent it: the
    call, or the refusal when it would pass the owner's quota. Each delivery that speaks it is a call of its own."""
    call = ledger.Call(
        owner_id=attempt.owner_id,
        provider=attempt.provider,
        model=voice.target_model,
        kind=ledger.UsageKind.PREVIEW,
        work_id=attempt.id,
        call_key=uuid.uuid4().hex,
        characters=len(PREVIEW_TEXT),
    )
    try:
        await ctx.ledger.reserve(conn, call)
    except QuotaExceeded as refused:
        return refused
    return call


async def _not_made(ctx: WorkerContext, attempt_id: uuid.UUID, code: str, message: str) -> Outcome:
    """The preview could not be made: back to `pending`, with why."""
    async with ctx.db.service_transaction() as conn:
        current, _ = await attempts.load(conn, attempt_id)
        failed = await attempts.transition(
            conn,
            current,
            ACTOR,
            preview=PreviewStatus.PENDING,
            changes={"last_error_code": code, "last_error_message": message},
        )
    return Outcome(status=failed.preview_status)
