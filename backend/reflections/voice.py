"""A reflection's voice from a direct upload (`POST .../voice/clone`) or from a voice the user already
has at a provider (`PATCH .../voice`). Either way the result is a queued attempt on the reflection."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from backend.auth.verify import UserClaims
from backend.clone.start import CustomVoiceId, Upload, start_clone
from backend.db.units import Database, Recorder
from backend.errors import ProviderRejected, ProviderUnavailable, ProviderVoiceNotFound
from backend.fields import LanguageTag, Name
from backend.providers.config import Provider
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.providers.registry import ProviderSet
from backend.records import attempts
from backend.records.attempts import Attempt, AttemptStatus
from backend.records.voices import VoiceName
from backend.reflections.service import require_visible
from backend.samples import service as samples
from backend.settings import Settings
from backend.storage.client import ObjectStorage


class QueuedClone(msgspec.Struct, rename="camel"):
    """`202` of `POST /v1/reflections/{id}/voice/clone`: the stored sample and its queued clone attempt."""

    voice_id: uuid.UUID
    attempt_id: uuid.UUID
    sample_id: uuid.UUID
    provider: str
    status: AttemptStatus
    sniffed_type: str


class CustomVoice(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `PATCH .../voice`: a voice the caller already has at a provider."""

    provider: Provider
    voice_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]
    name: Name | None = None
    language: LanguageTag | None = None


async def clone_from_upload(
    db: Database,
    storage: ObjectStorage,
    claims: UserClaims,
    reflection_id: uuid.UUID,
    *,
    received: samples.SampleUpload,
    settings: Settings,
    record: Recorder | None = None,
    voice_id: uuid.UUID | None = None,
    abandoned_voice_id: uuid.UUID | None = None,
) -> QueuedClone:
    """Store a consented, sniffed sample and queue the reflection's clone attempt.

    `record` (an Idempotency-Key's) gets the result in the transaction that writes the rows.

    Every check runs before anything is stored; the object is uploaded before the rows are written and
    removed again if writing them fails, so a fault leaves neither an orphaned object nor a half row. The
    new voice is `voice_id` (a new id by default), its sample stored under it; `abandoned_voice_id` is the
    voice an earlier, abandoned try of the same request may have stored it under (see
    `samples.stored_upload`).
    """
    owner_id, voice_id, sample_id = uuid.UUID(claims.sub), voice_id or uuid.uuid4(), uuid.uuid4()
    path = samples.voice_sample_path(owner_id, voice_id)
    abandoned = samples.voice_sample_path(owner_id, abandoned_voice_id) if abandoned_voice_id else None
    given = received.consent(settings.consent, subject_name=received.form.name or "My voice")
    new = samples.check_upload(
        received,
        given,
        settings.provider_settings,
        sample_id=sample_id,
        owner_id=owner_id,
        voice_id=voice_id,
        path=path,
    )
    async with db.user_transaction(claims.raw) as conn:
        await require_visible(conn, reflection_id)

    async with (
        samples.stored_upload(storage, path, received.upload, new.sniffed_type, abandoned=abandoned),
        db.user_transaction(claims.raw) as conn,
    ):
        reflection_name = await require_visible(conn, reflection_id)
        # Unnamed, the voice is named after its reflection ("Ada (2)" once an earlier clone's voice is "Ada").
        name = received.form.name.strip() if received.form.name else None
        source = Upload(
            voice_id=voice_id,
            sample=new,
            name=VoiceName(name, given=True) if name else VoiceName(reflection_name, given=False),
            consent=given,
            reflection_id=reflection_id,
            retention_days=settings.sample_retention_days,
        )
        attempt = await start_clone(conn, owner_id, source)
        result = QueuedClone(voice_id, attempt.id, sample_id, new.provider, attempt.status, new.sniffed_type)
        if record is not None:
            await record(conn, result)
    return result


async def attach_custom_voice(
    db: Database,
    claims: UserClaims,
    reflection_id: uuid.UUID,
    custom: CustomVoice,
    *,
    providers: ProviderSet,
    settings: Settings,
) -> Attempt:
    """Check the voice exists at the provider, in a language the provider speaks, and may be used by the
    caller, then attach it to the reflection through a `custom_voice_id` attempt (no preview: its owner has
    heard it already)."""
    provider_name = settings.provider_settings.usable(custom.provider)
    async with db.user_transaction(claims.raw) as conn:
        await require_visible(conn, reflection_id)
    try:
        found = await providers.get(provider_name).get(custom.voice_id)
    except VoiceNotFoundError as exc:
        raise ProviderVoiceNotFound(f"{provider_name} has no voice {custom.voice_id!r}.") from exc
    except (TransientProviderError, UnknownOutcomeError) as exc:
        raise ProviderUnavailable(exc.safe_message) from exc
    except PermanentProviderError as exc:
        raise ProviderRejected(exc.safe_message) from exc

    source = CustomVoiceId(
        provider=provider_name,
        found=found,
        name=custom.name,
        language=custom.language,
        reflection_id=reflection_id,
    )
    async with db.user_transaction(claims.raw) as conn:
        await require_visible(conn, reflection_id)
        attempt = await start_clone(conn, uuid.UUID(claims.sub), source)
    return attempts.view(attempt)
