"""A reflection's voice from a direct upload (`POST .../voice/clone`) or from a voice the user already
has at a provider (`PATCH .../voice`). Either way the result is a queued attempt on the reflection."""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from psycopg_pool import AsyncConnectionPool

from backend.audio.sniff import sniff_audio
from backend.auth.verify import UserClaims
from backend.db.execute import fetch_one, fetch_optional
from backend.db.pool import Connection, become_service, user_transaction
from backend.db.queries import load_queries
from backend.domain import clone
from backend.domain.reflections import Attempt, attempt_view
from backend.errors import (
    ConsentRequired,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    ProviderVoiceNotFound,
    ProviderVoiceTaken,
    SampleTooLarge,
    UnsupportedAudio,
)
from backend.providers.config import ProviderSettings, key_variable
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.providers.registry import ProviderSet, sample_rules
from backend.storage.client import ObjectStorage
from backend.uploads import ReceivedUpload

if TYPE_CHECKING:
    from backend.idempotency import Recorder

log = logging.getLogger(__name__)
Q = load_queries(Path(__file__).with_suffix(".sql"))
ProviderName = Literal["local", "qwen", "elevenlabs", "cartesia"]


class CloneForm(msgspec.Struct, frozen=True, kw_only=True):
    """The text fields of a sample upload."""

    consent: bool
    name: str | None
    language: str | None
    transcript: str | None
    provider: ProviderName | None
    subject_name: str | None
    user_agent: str | None
    client_ip: str | None


class CustomVoice(msgspec.Struct, frozen=True, kw_only=True):
    """A voice the user already has at a provider."""

    provider: ProviderName
    voice_id: str
    name: str | None
    language: str | None


def _provider_of(requested: str | None, providers: ProviderSettings) -> str:
    provider = requested or providers.default_provider
    if not providers.has_key(provider):
        raise ProviderNotConfigured(f"Voice provider {provider!r} is not configured ({key_variable(provider)}).")
    return provider


async def clone_from_upload(
    pool: AsyncConnectionPool[Connection],
    storage: ObjectStorage,
    claims: UserClaims,
    reflection_id: uuid.UUID,
    *,
    form: CloneForm,
    upload: ReceivedUpload,
    providers: ProviderSettings,
    record: Recorder | None = None,
) -> clone.FinalizedClone:
    """Store a consented, sniffed sample and queue the reflection's clone attempt.

    `record` (an Idempotency-Key's) gets the result in the transaction that writes the rows.

    Every check runs before anything is stored; the object is uploaded before the rows are written and
    removed again if writing them fails, so a fault leaves neither an orphaned object nor a half row.
    """
    if not form.consent:
        raise ConsentRequired
    provider = _provider_of(form.provider, providers)
    sniffed = sniff_audio(upload.head)
    if sniffed is None:
        raise UnsupportedAudio
    limit = sample_rules(provider).max_bytes
    if limit is not None and upload.size > limit:
        raise SampleTooLarge(f"The sample is {upload.size} bytes; {provider} accepts at most {limit}.")
    async with user_transaction(pool, claims.raw) as conn:
        await clone.visible_reflection(conn, reflection_id)

    owner_id, voice_id = uuid.UUID(claims.sub), uuid.uuid4()
    path = clone.sample_path(owner_id, voice_id)
    await storage.upload(clone.SAMPLES_BUCKET, path, upload.file, sniffed)
    try:
        stored = _StoredSample(voice_id=voice_id, path=path, sniffed=sniffed, provider=provider, record=record)
        return await _record_upload(pool, claims, reflection_id, form, upload, stored)
    except BaseException:
        # Undo the upload; if even that fails the object is in the owner's folder with no row, which the
        # reconcile script reports, but the request still fails with the original error.
        try:
            await storage.remove(clone.SAMPLES_BUCKET, [path])
        except Exception:
            log.exception("could not remove the sample of a failed clone upload")
        raise


class _StoredSample(msgspec.Struct, frozen=True, kw_only=True):
    voice_id: uuid.UUID
    path: str
    sniffed: str
    provider: str
    record: Any = None


async def _record_upload(  # noqa: PLR0917 - one private step of clone_from_upload
    pool: AsyncConnectionPool[Connection],
    claims: UserClaims,
    reflection_id: uuid.UUID,
    form: CloneForm,
    upload: ReceivedUpload,
    stored: _StoredSample,
) -> clone.FinalizedClone:
    owner_id, voice_id, path, sniffed, provider = (
        uuid.UUID(claims.sub),
        stored.voice_id,
        stored.path,
        stored.sniffed,
        stored.provider,
    )
    name = form.name or "My voice"
    async with user_transaction(pool, claims.raw) as conn:
        await clone.visible_reflection(conn, reflection_id)
        consent = await fetch_one(
            conn,
            clone.Q["insert_consent"],
            {
                "subject_name": form.subject_name or name,
                "consent_text_version": clone.CONSENT_TEXT_VERSION,
                "user_agent": (form.user_agent or "")[:1000] or None,
                "ip_hash": hashlib.sha256(form.client_ip.encode()).hexdigest() if form.client_ip else None,
            },
        )
        await fetch_one(
            conn,
            clone.Q["insert_voice"],
            {"id": voice_id, "name": name, "language": form.language, "consent_id": consent["id"]},
        )
        await become_service(conn)
        sample = await fetch_one(
            conn,
            clone.Q["insert_sample"],
            {
                "owner_id": owner_id,
                "voice_id": voice_id,
                "consent_id": consent["id"],
                "bucket_id": clone.SAMPLES_BUCKET,
                "object_path": path,
                "declared_type": upload.declared_type,
                "sniffed_type": sniffed,
                "size_bytes": upload.size,
                "transcript": form.transcript,
                "language": form.language,
            },
        )
        attempt = await fetch_one(
            conn,
            clone.Q["insert_attempt"],
            {
                "owner_id": owner_id,
                "voice_id": voice_id,
                "reflection_id": reflection_id,
                "sample_id": sample["id"],
                "provider": provider,
            },
        )
        result = clone.FinalizedClone(voice_id, attempt["id"], sample["id"], provider, attempt["status"], sniffed)
        if stored.record is not None:
            await stored.record(conn, result)
    return result


async def attach_custom_voice(
    pool: AsyncConnectionPool[Connection],
    claims: UserClaims,
    reflection_id: uuid.UUID,
    custom: CustomVoice,
    *,
    providers: ProviderSet,
    provider_settings: ProviderSettings,
) -> Attempt:
    """Check the voice exists at the provider and may be used by the caller, then attach it to the
    reflection through a `custom_voice_id` attempt (no preview: its owner has heard it already)."""
    provider_name = _provider_of(custom.provider, provider_settings)
    async with user_transaction(pool, claims.raw) as conn:
        await clone.visible_reflection(conn, reflection_id)
    try:
        found = await providers.get(provider_name).get(custom.voice_id)
    except VoiceNotFoundError as exc:
        raise ProviderVoiceNotFound(f"{provider_name} has no voice {custom.voice_id!r}.") from exc
    except (TransientProviderError, UnknownOutcomeError) as exc:
        raise ProviderUnavailable(exc.safe_message) from exc
    except PermanentProviderError as exc:
        raise ProviderRejected(exc.safe_message) from exc

    owner_id = uuid.UUID(claims.sub)
    async with user_transaction(pool, claims.raw) as conn:
        await clone.visible_reflection(conn, reflection_id)
        await become_service(conn)
        voice_id = await _usable_voice(conn, owner_id, provider_name, custom.voice_id, found.enrolment_key)
        if voice_id is None:
            voice_id = uuid.uuid4()
            await fetch_one(
                conn,
                Q["insert_custom_voice"],
                {
                    "id": voice_id,
                    "owner_id": owner_id,
                    "name": custom.name or found.name or "Custom voice",
                    "language": custom.language,
                    "provider": provider_name,
                },
            )
        row = await fetch_one(
            conn,
            Q["insert_custom_attempt"],
            {
                "owner_id": owner_id,
                "voice_id": voice_id,
                "reflection_id": reflection_id,
                "provider": provider_name,
                "preview_required": False,
                "provider_voice_id": custom.voice_id,
                "target_model": found.target_model,
            },
        )
    return attempt_view(row)


async def _usable_voice(
    conn: Connection, owner_id: uuid.UUID, provider: str, voice_id: str, enrolment_key: str | None
) -> uuid.UUID | None:
    """The caller's voice row that already holds this provider voice (reused), or None for a new one.

    A provider voice attached to someone else's voice, or cloned by voicegate from someone else's
    sample, is not the caller's to use: one shared provider account must not leak voices between users.
    """
    holder = await fetch_optional(
        conn, Q["provider_voice_owner"], {"provider": provider, "provider_voice_id": voice_id}
    )
    if holder is not None:
        if holder["owner_id"] != owner_id:
            raise ProviderVoiceTaken
        held: uuid.UUID = holder["id"]
        return held
    if enrolment_key is not None:
        mine = await fetch_optional(
            conn, Q["enrolled_by_owner"], {"owner_id": owner_id, "enrolment_key": enrolment_key}
        )
        if mine is None:
            raise ProviderVoiceTaken
    return None
