"""The upload-then-finalize clone flow (`/api/clone/...`): a signed upload URL for a consented draft
voice, then a checked sample and a queued attempt, all or nothing."""

from __future__ import annotations

import uuid

import msgspec

from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.auth.verify import UserClaims
from backend.clone.start import SignedUpload, draft_voice, lock_draft, start_clone
from backend.consents.service import GivenConsent, Origin, Policy, require_consent
from backend.db.bucket_config import declared_bucket
from backend.db.units import Database, Recorder
from backend.errors import SampleNotUploaded, UnsupportedAudio
from backend.fields import LanguageTag, Name, Text
from backend.providers.config import Provider
from backend.providers.registry import check_enrolment_language
from backend.records.attempts import AttemptStatus
from backend.records.voices import VoiceName
from backend.reflections import service as reflections
from backend.samples import service as samples
from backend.settings import Settings
from backend.storage.client import ObjectStorage


class UploadTicket(msgspec.Struct):
    """Where and how to upload the sample of a new draft voice."""

    voice_id: uuid.UUID
    bucket: str
    path: str
    upload_url: str
    token: str
    #: The content types the upload may declare (its `Content-Type`, or a multipart file part's): the
    #: bucket refuses any other with 415, the stock clients' `text/plain` default included.
    content_types: list[str]


class FinalizedClone(msgspec.Struct):
    """The queued clone attempt of a finalized voice."""

    voice_id: uuid.UUID
    attempt_id: uuid.UUID
    sample_id: uuid.UUID
    provider: str
    status: AttemptStatus
    sniffed_type: str


class UploadUrlBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/clone/upload-url`."""

    name: Name
    consent: bool = False
    #: A verified spoken consent to make the voice under (`POST /api/v1/consents`), instead of the checkbox.
    consent_id: uuid.UUID | None = None
    language: LanguageTag | None = None
    subject_name: Name | None = None
    #: The optional consent to keep the sample while the voice exists (see `SampleForm.keep_sample`).
    keep_sample: bool = False


class FinalizeBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/clone/finalize`."""

    voice_id: uuid.UUID
    name: Name | None = None
    language: LanguageTag | None = None
    transcript: Text | None = None
    provider: Provider | None = None
    reflection_id: uuid.UUID | None = None


async def create_upload(
    db: Database,
    storage: ObjectStorage,
    claims: UserClaims,
    request: UploadUrlBody,
    *,
    origin: Origin,
    public_url: str,
    policy: Policy,
) -> UploadTicket:
    """Record consent (or take the verified spoken one named, as `policy` allows) and a draft voice, and hand
    out a signed URL for its sample (at Storage's `public_url`). The URL is signed first: if Storage is
    unreachable nothing has been written yet.
    """
    name = request.name.strip()
    consent = GivenConsent(
        checkbox=request.consent,
        consent_id=request.consent_id,
        subject_name=request.subject_name or name,
        origin=origin,
        policy=policy,
        keep_sample=request.keep_sample,
    )
    require_consent(consent)
    owner_id, voice_id = uuid.UUID(claims.sub), uuid.uuid4()
    path = samples.voice_sample_path(owner_id, voice_id)
    signed = await storage.create_signed_upload_url(samples.BUCKET, path)
    async with db.user_transaction(claims.raw) as conn:
        given = VoiceName(name, given=True)
        await draft_voice(conn, owner_id, voice_id, name=given, language=request.language, consent=consent)
    return UploadTicket(
        voice_id=voice_id,
        bucket=samples.BUCKET,
        path=path,
        upload_url=f"{public_url}/object/upload/sign/{samples.BUCKET}/{path}?token={signed.token}",
        token=signed.token,
        content_types=list(declared_bucket(samples.BUCKET).allowed_mime_types or ()),
    )


async def finalize(
    db: Database,
    storage: ObjectStorage,
    claims: UserClaims,
    request: FinalizeBody,
    *,
    settings: Settings,
    record: Recorder | None = None,
) -> FinalizedClone:
    """Check the language (the provider makes voices in it) and the uploaded sample (present, within limits,
    really audio), then in one transaction record it and queue the clone attempt. Nothing is written when
    any check fails.

    `record` (an Idempotency-Key's) gets the result in that transaction, just before it commits.
    """
    provider = settings.provider_settings.usable(request.provider)
    owner_id = uuid.UUID(claims.sub)
    path = samples.voice_sample_path(owner_id, request.voice_id)

    async with db.user_transaction(claims.raw) as conn:
        draft = await lock_draft(conn, request.voice_id)
        if request.reflection_id is not None:
            await reflections.require_visible(conn, request.reflection_id)
    check_enrolment_language(provider, request.language or draft["language"])

    info = await storage.info(samples.BUCKET, path)
    if info is None:
        raise SampleNotUploaded
    samples.check_size(info.size, provider)
    sniffed = sniff_audio((await storage.download(samples.BUCKET, path))[:SNIFF_BYTES])
    if sniffed is None:
        raise UnsupportedAudio

    async with db.user_transaction(claims.raw) as conn:
        new = samples.NewSample(
            sample_id=uuid.uuid4(),
            owner_id=owner_id,
            voice_id=request.voice_id,
            path=path,
            declared_type=info.content_type,
            sniffed_type=sniffed,
            size_bytes=info.size,
            provider=provider,
            transcript=request.transcript,
            language=request.language,
        )
        source = SignedUpload(
            voice_id=request.voice_id,
            sample=new,
            name=request.name.strip() if request.name else None,
            reflection_id=request.reflection_id,
            retention_days=settings.sample_retention_days,
        )
        attempt = await start_clone(conn, owner_id, source)
        finalized = FinalizedClone(request.voice_id, attempt.id, new.sample_id, provider, attempt.status, sniffed)
        if record is not None:
            await record(conn, finalized)
    return finalized
