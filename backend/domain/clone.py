"""The upload-then-finalize clone flow (`/api/clone/...`): a signed upload URL for a consented draft
voice, then a checked sample and a queued attempt, all or nothing."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

import msgspec
from psycopg_pool import AsyncConnectionPool

from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.auth.verify import UserClaims
from backend.db.execute import fetch_one, fetch_optional
from backend.db.pool import Connection, become_service, user_transaction
from backend.db.queries import load_queries
from backend.errors import (
    Conflict,
    ConsentRequired,
    NotFound,
    ProviderNotConfigured,
    SampleNotUploaded,
    SampleTooLarge,
    UnsupportedAudio,
)
from backend.providers.config import ProviderSettings, key_variable
from backend.providers.registry import sample_rules
from backend.storage.client import ObjectStorage

if TYPE_CHECKING:
    from backend.idempotency import Recorder

Q = load_queries(Path(__file__).with_suffix(".sql"))
SAMPLES_BUCKET = "voice-samples"
#: The consent wording a client showed; bump when the text changes so records say which one was agreed to.
CONSENT_TEXT_VERSION = "2026-11"


class UploadTicket(msgspec.Struct):
    """Where and how to upload the sample of a new draft voice."""

    voice_id: uuid.UUID
    bucket: str
    path: str
    upload_url: str
    token: str


class FinalizedClone(msgspec.Struct):
    """The queued clone attempt of a finalized voice."""

    voice_id: uuid.UUID
    attempt_id: uuid.UUID
    sample_id: uuid.UUID
    provider: str
    status: str
    sniffed_type: str


class UploadRequest(msgspec.Struct, frozen=True):
    """What `create_upload` needs from the request."""

    name: str
    consent: bool
    language: str | None
    subject_name: str | None
    user_agent: str | None
    client_ip: str | None


class FinalizeRequest(msgspec.Struct, frozen=True):
    """What `finalize` needs from the request."""

    voice_id: uuid.UUID
    name: str | None
    language: str | None
    transcript: str | None
    provider: Literal["local", "qwen", "elevenlabs", "cartesia"] | None
    reflection_id: uuid.UUID | None


def provider_of(requested: str | None, providers: ProviderSettings) -> str:
    """The provider asked for, or the default; 422 when it has no key."""
    provider = requested or providers.default_provider
    if not providers.has_key(provider):
        raise ProviderNotConfigured(f"Voice provider {provider!r} is not configured ({key_variable(provider)}).")
    return provider


def sample_path(owner_id: uuid.UUID, voice_id: uuid.UUID) -> str:
    """Where a voice's original sample lives: inside its owner's folder, as the storage RLS demands."""
    return f"{owner_id}/{voice_id}/original"


def processed_sample_path(object_path: str) -> str:
    """Where the cleaned copy of the sample at `object_path` is stored: beside it, under a fixed name,
    so a purge can remove it even when a worker wrote it but had not yet recorded it."""
    return str(PurePosixPath(object_path).parent / "processed.wav")


async def create_upload(
    pool: AsyncConnectionPool[Connection],
    storage: ObjectStorage,
    claims: UserClaims,
    request: UploadRequest,
    storage_public_url: str,
) -> UploadTicket:
    """Record consent and a draft voice, and hand out a signed URL for its sample.

    The URL is signed first: if Storage is unreachable nothing has been written yet.
    """
    if not request.consent:
        raise ConsentRequired
    owner_id, voice_id = uuid.UUID(claims.sub), uuid.uuid4()
    path = sample_path(owner_id, voice_id)
    signed = await storage.create_signed_upload_url(SAMPLES_BUCKET, path)
    async with user_transaction(pool, claims.raw) as conn:
        consent = await fetch_one(
            conn,
            Q["insert_consent"],
            {
                "subject_name": request.subject_name or request.name,
                "consent_text_version": CONSENT_TEXT_VERSION,
                "user_agent": (request.user_agent or "")[:1000] or None,
                # Enough to tell requests apart in an audit, without keeping the address itself.
                "ip_hash": hashlib.sha256(request.client_ip.encode()).hexdigest() if request.client_ip else None,
            },
        )
        await fetch_one(
            conn,
            Q["insert_voice"],
            {"id": voice_id, "name": request.name, "language": request.language, "consent_id": consent["id"]},
        )
    return UploadTicket(
        voice_id=voice_id,
        bucket=SAMPLES_BUCKET,
        path=path,
        upload_url=f"{storage_public_url}/object/upload/sign/{SAMPLES_BUCKET}/{path}?token={signed.token}",
        token=signed.token,
    )


async def finalize(
    pool: AsyncConnectionPool[Connection],
    storage: ObjectStorage,
    claims: UserClaims,
    request: FinalizeRequest,
    *,
    providers: ProviderSettings,
    retention_days: float,
    record: Recorder | None = None,
) -> FinalizedClone:
    """Check the uploaded sample (present, within limits, really audio), then in one transaction
    record it and queue the clone attempt. Nothing is written when any check fails.

    `record` (an Idempotency-Key's) gets the result in that transaction, just before it commits.
    """
    provider = provider_of(request.provider, providers)
    owner_id = uuid.UUID(claims.sub)
    path = sample_path(owner_id, request.voice_id)

    async with user_transaction(pool, claims.raw) as conn:
        await _draft_voice(conn, request.voice_id)
        if request.reflection_id is not None:
            await visible_reflection(conn, request.reflection_id)

    info = await storage.info(SAMPLES_BUCKET, path)
    if info is None:
        raise SampleNotUploaded
    # The bucket's own limit was enforced by Storage on upload; the provider's may be lower.
    limit = sample_rules(provider).max_bytes
    if limit is not None and (info.size or 0) > limit:
        raise SampleTooLarge(f"The sample is {info.size} bytes; {provider} accepts at most {limit}.")
    sniffed = sniff_audio((await storage.download(SAMPLES_BUCKET, path))[:SNIFF_BYTES])
    if sniffed is None:
        raise UnsupportedAudio

    async with user_transaction(pool, claims.raw) as conn:
        voice = await _draft_voice(conn, request.voice_id)
        await become_service(conn)
        sample = await fetch_one(
            conn,
            Q["insert_sample"],
            {
                "id": uuid.uuid4(),
                "owner_id": owner_id,
                "voice_id": request.voice_id,
                "consent_id": voice["consent_id"],
                "bucket_id": SAMPLES_BUCKET,
                "object_path": path,
                "declared_type": info.content_type,
                "sniffed_type": sniffed,
                "size_bytes": info.size,
                "transcript": request.transcript,
                "language": request.language,
                "provider": provider,
                # The clone attempt checks and prepares the audio itself.
                "status": "ready",
                "retention_days": retention_days,
            },
        )
        await conn.execute(
            Q["name_voice"], {"id": request.voice_id, "name": request.name, "language": request.language}
        )
        attempt = await fetch_one(
            conn,
            Q["insert_attempt"],
            {
                "owner_id": owner_id,
                "voice_id": request.voice_id,
                "reflection_id": request.reflection_id,
                "sample_id": sample["id"],
                "provider": provider,
            },
        )
        finalized = FinalizedClone(request.voice_id, attempt["id"], sample["id"], provider, attempt["status"], sniffed)
        if record is not None:
            await record(conn, finalized)
    return finalized


async def _draft_voice(conn: Connection, voice_id: uuid.UUID) -> dict[str, object]:
    voice = await fetch_optional(conn, Q["voice_for_finalize"], {"id": voice_id})
    if voice is None:
        raise NotFound("Voice not found.")
    if voice["status"] != "draft":
        raise Conflict(f"The voice is already {voice['status']}; start a new voice to clone again.")
    return voice


async def visible_reflection(conn: Connection, reflection_id: uuid.UUID) -> None:
    """NotFound unless the reflection is visible on `conn` (the caller's own, under RLS)."""
    if await fetch_optional(conn, Q["reflection_visible"], {"id": reflection_id}) is None:
        raise NotFound("Reflection not found.")
