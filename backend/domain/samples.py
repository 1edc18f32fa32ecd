"""Voice samples of the PRD flow (`/api/v1/voice-samples`): a consented upload checked on the
`voice_sample_process` queue, its status with the quality report, and deletion on request.

The checks every sample upload shares (consent, provider, sniffed format, size) and the
upload-then-rows order that never leaves an orphaned object live here too; the reflection clone
route uses them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from psycopg_pool import AsyncConnectionPool

from backend.audio.pipeline import QualityReport
from backend.audio.sniff import sniff_audio
from backend.auth.verify import UserClaims
from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.pool import Connection, become_service, service_transaction, user_transaction
from backend.db.queries import load_queries
from backend.domain import clone
from backend.domain.retention import purge_sample
from backend.errors import Conflict, ConsentRequired, NotFound, SampleTooLarge, UnsupportedAudio
from backend.lifecycle.attempts import enqueue
from backend.providers.config import ProviderSettings
from backend.providers.registry import sample_rules
from backend.storage.client import ObjectStorage
from backend.uploads import ReceivedUpload

if TYPE_CHECKING:
    from backend.idempotency import Recorder

log = logging.getLogger(__name__)
Q = load_queries(Path(__file__).with_suffix(".sql"))
SAMPLE_QUEUE = "voice_sample_process"
ProviderName = Literal["local", "qwen", "elevenlabs", "cartesia"]
#: Most samples one list answer holds (retention keeps a user's list short anyway).
LIST_LIMIT = 200


class SampleForm(msgspec.Struct, frozen=True, kw_only=True):
    """The text fields of a sample upload, and where it came from (kept with the consent)."""

    consent: bool
    name: str | None
    language: str | None
    transcript: str | None
    provider: ProviderName | None
    subject_name: str | None
    user_agent: str | None
    client_ip: str | None


class CheckedUpload(msgspec.Struct, frozen=True, kw_only=True):
    """An upload that passed the checks made before anything is stored."""

    provider: str
    sniffed_type: str


class SampleAccepted(msgspec.Struct, rename="camel"):
    """`202` of `POST /api/v1/voice-samples`: the sample is stored and queued for checking."""

    sample_id: uuid.UUID
    status: str
    provider: str
    expires_at: datetime


class SampleStatus(msgspec.Struct, rename="camel"):
    """A sample as its owner sees it: where checking got to, and what was measured."""

    sample_id: uuid.UUID
    status: str
    provider: str | None
    sniffed_type: str | None
    size_bytes: int | None
    duration_ms: int | None
    sample_rate: int | None
    channels: int | None
    #: What was measured on the upload, with a verdict and advice; null until checked.
    quality: QualityReport | None
    #: Why the sample was refused (`failed` only), in words a user can act on.
    failure_reason: str | None
    #: The voice cloned from this sample, once a clone was asked for.
    voice_id: uuid.UUID | None
    expires_at: datetime
    created_at: datetime


class SampleList(msgspec.Struct):
    """The caller's samples, newest first."""

    samples: list[SampleStatus]


def check_upload(form: SampleForm, upload: ReceivedUpload, providers: ProviderSettings) -> CheckedUpload:
    """Consent, a configured provider, audio by its bytes, and the provider's size limit."""
    if not form.consent:
        raise ConsentRequired
    provider = clone.provider_of(form.provider, providers)
    sniffed = sniff_audio(upload.head)
    if sniffed is None:
        raise UnsupportedAudio
    limit = sample_rules(provider).max_bytes
    if limit is not None and upload.size > limit:
        raise SampleTooLarge(f"The sample is {upload.size} bytes; {provider} accepts at most {limit}.")
    return CheckedUpload(provider=provider, sniffed_type=sniffed)


async def record_consent(conn: Connection, form: SampleForm, subject: str) -> uuid.UUID:
    """The consent behind a sample, written as the user (RLS checks it is theirs)."""
    consent = await fetch_one(
        conn,
        clone.Q["insert_consent"],
        {
            "subject_name": form.subject_name or subject,
            "consent_text_version": clone.CONSENT_TEXT_VERSION,
            "user_agent": (form.user_agent or "")[:1000] or None,
            "ip_hash": hashlib.sha256(form.client_ip.encode()).hexdigest() if form.client_ip else None,
        },
    )
    consent_id: uuid.UUID = consent["id"]
    return consent_id


@contextlib.asynccontextmanager
async def stored_upload(storage: ObjectStorage, path: str, upload: ReceivedUpload, mime: str) -> AsyncIterator[None]:
    """Upload the sample to `voice-samples/path`; if the body (which writes its rows) fails, remove it.

    If even the removal fails the object stays in its owner's folder with no row, which the reconcile
    script reports; the request still fails with the original error.
    """
    await storage.upload(clone.SAMPLES_BUCKET, path, upload.file, mime)
    try:
        yield
    except BaseException:
        try:
            await storage.remove(clone.SAMPLES_BUCKET, [path])
        except Exception:
            log.exception("could not remove the sample of a failed upload")
        raise


class StoredSample(msgspec.Struct, frozen=True, kw_only=True):
    """Where an uploaded sample went, and whose it is."""

    sample_id: uuid.UUID
    owner_id: uuid.UUID
    consent_id: uuid.UUID
    path: str
    voice_id: uuid.UUID | None


async def insert_sample(
    conn: Connection,
    stored: StoredSample,
    upload: ReceivedUpload,
    checked: CheckedUpload,
    form: SampleForm,
    *,
    status: str,
    retention_days: float,
) -> dict[str, Any]:
    """The sample's row, as the service (on a transaction that already wrote the consent)."""
    return await fetch_one(
        conn,
        clone.Q["insert_sample"],
        {
            "id": stored.sample_id,
            "owner_id": stored.owner_id,
            "voice_id": stored.voice_id,
            "consent_id": stored.consent_id,
            "bucket_id": clone.SAMPLES_BUCKET,
            "object_path": stored.path,
            "declared_type": upload.declared_type,
            "sniffed_type": checked.sniffed_type,
            "size_bytes": upload.size,
            "transcript": form.transcript,
            "language": form.language,
            "provider": checked.provider,
            "status": status,
            "retention_days": retention_days,
        },
    )


def v1_sample_path(owner_id: uuid.UUID, sample_id: uuid.UUID) -> str:
    """Where a sample uploaded on its own lives (its processed copy goes beside it)."""
    return f"{owner_id}/samples/{sample_id}/original"


async def upload_sample(
    pool: AsyncConnectionPool[Connection],
    storage: ObjectStorage,
    claims: UserClaims,
    *,
    form: SampleForm,
    upload: ReceivedUpload,
    providers: ProviderSettings,
    retention_days: float,
    record: Recorder | None = None,
) -> SampleAccepted:
    """Store a consented sample and queue it for checking, in that order and all or nothing.

    The consent, the sample row and the `voice_sample_process` message commit together (with the
    Idempotency-Key's record, if any); if they cannot, the uploaded object is removed again.
    """
    checked = check_upload(form, upload, providers)
    owner_id, sample_id = uuid.UUID(claims.sub), uuid.uuid4()
    path = v1_sample_path(owner_id, sample_id)
    async with stored_upload(storage, path, upload, checked.sniffed_type), user_transaction(pool, claims.raw) as conn:
        consent_id = await record_consent(conn, form, form.name or "My voice")
        await become_service(conn)
        row = await insert_sample(
            conn,
            StoredSample(sample_id=sample_id, owner_id=owner_id, consent_id=consent_id, path=path, voice_id=None),
            upload,
            checked,
            form,
            status="pending",
            retention_days=retention_days,
        )
        await enqueue(conn, SAMPLE_QUEUE, {"sampleId": str(sample_id)})
        accepted = SampleAccepted(sample_id, row["status"], checked.provider, row["expires_at"])
        if record is not None:
            await record(conn, accepted)
    return accepted


async def sample_status(conn: Connection, sample_id: uuid.UUID) -> SampleStatus:
    """The caller's sample (RLS on `conn` decides whose), 404 for anyone else's."""
    row = await fetch_optional(conn, Q["sample_status"], {"id": sample_id})
    if row is None:
        raise NotFound("Sample not found.")
    return _status_of(row)


async def list_samples(conn: Connection) -> SampleList:
    """The caller's samples (RLS on `conn` decides whose), newest first, at most `LIST_LIMIT`."""
    rows = await fetch_all(conn, Q["list_samples"], {"limit": LIST_LIMIT})
    return SampleList([_status_of(row) for row in rows])


def _status_of(row: dict[str, Any]) -> SampleStatus:
    report = row["quality_report"]
    return SampleStatus(
        sample_id=row["id"],
        status=row["status"],
        provider=row["provider"],
        sniffed_type=row["sniffed_type"],
        size_bytes=row["size_bytes"],
        duration_ms=row["duration_ms"],
        sample_rate=row["sample_rate"],
        channels=row["channels"],
        quality=None if report is None else msgspec.convert(report, QualityReport),
        failure_reason=row["failure_reason"],
        voice_id=row["voice_id"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
    )


async def delete_sample(
    pool: AsyncConnectionPool[Connection], storage: ObjectStorage, claims: UserClaims, sample_id: uuid.UUID
) -> None:
    """Purge the caller's sample now: the row, its original and processed objects, and an audit event.

    A clone attempt still enrolling from it fails with `sample_missing`; a voice already cloned from
    it stays (it lives at the provider, not in the sample).
    """
    async with user_transaction(pool, claims.raw) as conn:
        if await fetch_optional(conn, Q["sample_status"], {"id": sample_id}) is None:
            raise NotFound("Sample not found.")
    async with service_transaction(pool) as conn:
        purged = await purge_sample(conn, storage, sample_id, actor=f"user:{claims.sub}", reason="deleted")
    if purged is None:
        async with user_transaction(pool, claims.raw) as conn:
            if await fetch_optional(conn, Q["sample_status"], {"id": sample_id}) is None:
                raise NotFound("Sample not found.")  # a concurrent delete or the retention purge won
        raise Conflict("Another request is deleting this sample; try again.")
