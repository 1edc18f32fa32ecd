"""A reflection's voice from a direct upload (`POST .../voice/clone`) or from a voice the user already
has at a provider (`PATCH .../voice`). Either way the result is a queued attempt on the reflection."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec
from psycopg_pool import AsyncConnectionPool

from backend.auth.verify import UserClaims
from backend.db.execute import fetch_one, fetch_optional
from backend.db.pool import Connection, become_service, user_transaction
from backend.db.queries import load_queries
from backend.domain import clone
from backend.domain.reflections import Attempt, attempt_view
from backend.domain.samples import (
    SampleForm,
    StoredSample,
    check_upload,
    insert_sample,
    record_consent,
    stored_upload,
)
from backend.errors import (
    ProviderRejected,
    ProviderUnavailable,
    ProviderVoiceNotFound,
    ProviderVoiceTaken,
)
from backend.providers.config import ProviderSettings
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.providers.registry import ProviderSet
from backend.storage.client import ObjectStorage
from backend.uploads import ReceivedUpload

if TYPE_CHECKING:
    from backend.idempotency import Recorder

Q = load_queries(Path(__file__).with_suffix(".sql"))
ProviderName = Literal["local", "qwen", "elevenlabs", "cartesia"]


class CustomVoice(msgspec.Struct, frozen=True, kw_only=True):
    """A voice the user already has at a provider."""

    provider: ProviderName
    voice_id: str
    name: str | None
    language: str | None


async def clone_from_upload(
    pool: AsyncConnectionPool[Connection],
    storage: ObjectStorage,
    claims: UserClaims,
    reflection_id: uuid.UUID,
    *,
    form: SampleForm,
    upload: ReceivedUpload,
    providers: ProviderSettings,
    retention_days: float,
    record: Recorder | None = None,
) -> clone.FinalizedClone:
    """Store a consented, sniffed sample and queue the reflection's clone attempt.

    `record` (an Idempotency-Key's) gets the result in the transaction that writes the rows.

    Every check runs before anything is stored; the object is uploaded before the rows are written and
    removed again if writing them fails, so a fault leaves neither an orphaned object nor a half row.
    """
    checked = check_upload(form, upload, providers)
    async with user_transaction(pool, claims.raw) as conn:
        await clone.visible_reflection(conn, reflection_id)

    owner_id, voice_id = uuid.UUID(claims.sub), uuid.uuid4()
    path = clone.sample_path(owner_id, voice_id)
    name = form.name or "My voice"
    async with stored_upload(storage, path, upload, checked.sniffed_type), user_transaction(pool, claims.raw) as conn:
        await clone.visible_reflection(conn, reflection_id)
        consent_id = await record_consent(conn, form, name)
        await fetch_one(
            conn,
            clone.Q["insert_voice"],
            {"id": voice_id, "name": name, "language": form.language, "consent_id": consent_id},
        )
        await become_service(conn)
        stored = StoredSample(
            sample_id=uuid.uuid4(), owner_id=owner_id, consent_id=consent_id, path=path, voice_id=voice_id
        )
        # The clone attempt checks and prepares the audio itself.
        sample = await insert_sample(conn, stored, upload, checked, form, status="ready", retention_days=retention_days)
        attempt = await fetch_one(
            conn,
            clone.Q["insert_attempt"],
            {
                "owner_id": owner_id,
                "voice_id": voice_id,
                "reflection_id": reflection_id,
                "sample_id": sample["id"],
                "provider": checked.provider,
            },
        )
        result = clone.FinalizedClone(
            voice_id, attempt["id"], sample["id"], checked.provider, attempt["status"], checked.sniffed_type
        )
        if record is not None:
            await record(conn, result)
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
    provider_name = clone.provider_of(custom.provider, provider_settings)
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
