"""Voice samples: the one write path every sample takes (consent, checks, upload, row), where samples
live in Storage, and what their owner may see of them; the consent a sample is stored under, read or recorded
(`consent_for_sample`), and its speaker judged against that consent's (`judge_sample`, for the check).

Every upload route stores its sample through here: `POST /api/v1/voice-samples` (checked on the
`voice_sample_process` queue), the reflection clone route and the upload-then-finalize flow (both
checked by the clone attempt itself). Nothing is written before every check passed; an object is
uploaded before its rows and removed again when they cannot be written, so a fault leaves neither an
orphaned object nor a half row.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from backend.audio.report import QualityReport
from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.db.connection import Connection
from backend.db.execute import fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import as_service
from backend.errors import NotFound, SampleNotUploaded, SampleTooLarge, StorageUnavailable, UnsupportedAudio
from backend.failpoints import failpoint
from backend.fields import Label, LanguageTag, Name, Text
from backend.policy.consent import (
    CONSENT_TEXT_VERSION,
    GivenConsent,
    Origin,
    Policy,
    SpeakerJudgement,
    check_covers_sample,
    judge_speaker,
    require_consent,
)
from backend.providers.config import Provider, ProviderSettings
from backend.providers.registry import check_enrolment_language, sample_rules
from backend.records.rows import fetch_record
from backend.records.sample_rows import SampleRow, VoiceSampleStatus
from backend.samples.types import SampleStatus
from backend.storage import paths
from backend.storage.client import ObjectStorage
from backend.voiceprint import SpeechPrints, Voiceprint, stored_print

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
BUCKET: Final = paths.SAMPLES
#: How long a sample's listening URL works: to play it once, not to share it.
AUDIO_URL_SECONDS: Final = 300
#: Most samples one list answer holds (retention keeps a user's list short anyway).
LIST_LIMIT: Final = 200


class SampleForm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The text fields of a sample upload (besides its `file` part)."""

    consent: bool = False
    #: A verified spoken consent to store the sample under (`POST /api/v1/consents`), instead of the checkbox.
    consent_id: uuid.UUID | None = msgspec.field(default=None, name="consentId")
    #: The sample's name, and the consent's subject when `subject_name` is not given.
    name: Label | None = None
    language: LanguageTag | None = None
    transcript: Text | None = None
    provider: Provider | None = None
    subject_name: Name | None = None
    #: The optional consent to keep the sample while the voice exists, so it can be moved to another provider.
    keep_sample: bool = False


@dataclass
class ReceivedUpload:
    """The text fields and the one file of a sample upload, spooled (see `backend.http.routes.samples`)."""

    fields: dict[str, str]
    file: IO[bytes]
    size: int = 0
    sha256: str = ""
    filename: str | None = None
    declared_type: str | None = None
    head: bytes = b""
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    def write(self, chunk: bytes, *, head_bytes: int) -> None:
        """Spool the next chunk of the file: counted, hashed, and kept in `head` while it holds under `head_bytes`."""
        self.size += len(chunk)
        if len(self.head) < head_bytes:
            self.head += chunk[: head_bytes - len(self.head)]
        self._hash.update(chunk)
        self.file.write(chunk)

    def seal(self) -> None:
        """The whole file has come: its hash is final (`sha256`), and it reads from its start."""
        self.sha256 = self._hash.hexdigest()
        self.file.seek(0)

    def close(self) -> None:
        """Delete the temporary file."""
        self.file.close()


@dataclass(frozen=True)
class SampleUpload:
    """A received sample: the spooled file, the form, where it came from, and what identifies the request
    for an Idempotency-Key (the same fields and the same file bytes, by hash, are the same request)."""

    upload: ReceivedUpload
    form: SampleForm
    origin: Origin
    fingerprint: str

    def consent(self, policy: Policy, *, subject_name: str | None = None) -> GivenConsent:
        """What the upload says of its consent, under the deployment's `policy` (VOICEGATE_CONSENT); the
        subject, for a consent ticked now, is `subject_name`, else the sample's name."""
        form = self.form
        return GivenConsent(
            checkbox=form.consent,
            consent_id=form.consent_id,
            subject_name=form.subject_name or subject_name or form.name or "My voice",
            origin=self.origin,
            policy=policy,
            keep_sample=form.keep_sample,
        )


class NewSample(msgspec.Struct, frozen=True, kw_only=True):
    """A sample that passed the checks made before anything is stored: where it goes, and its row-to-be
    (the consent is recorded in the transaction that writes the row)."""

    sample_id: uuid.UUID
    owner_id: uuid.UUID
    voice_id: uuid.UUID | None
    path: str
    declared_type: str | None
    sniffed_type: str
    size_bytes: int | None
    provider: str
    transcript: str | None
    language: str | None
    consent_id: uuid.UUID | None = None
    #: What its owner calls it (the upload's `name`), None when unnamed.
    name: str | None = None


def check_upload(
    received: SampleUpload,
    given: GivenConsent,
    providers: ProviderSettings,
    *,
    sample_id: uuid.UUID,
    owner_id: uuid.UUID,
    voice_id: uuid.UUID | None,
    path: str,
) -> NewSample:
    """A consent this deployment takes (`given`, as far as it can be told before the database is asked), a
    configured provider that makes voices in the sample's language, audio by its bytes, and the provider's
    size limit; the sample to store at `path` when they pass."""
    form, upload = received.form, received.upload
    require_consent(given)
    provider = providers.usable(form.provider)
    check_enrolment_language(provider, form.language)
    sniffed = sniff_audio(upload.head)
    if sniffed is None:
        raise UnsupportedAudio
    check_size(upload.size, provider)
    return NewSample(
        sample_id=sample_id,
        owner_id=owner_id,
        voice_id=voice_id,
        path=path,
        declared_type=upload.declared_type,
        sniffed_type=sniffed,
        size_bytes=upload.size,
        provider=provider,
        transcript=form.transcript,
        language=form.language,
        name=form.name.strip() if form.name else None,
    )


async def check_signed_upload(
    storage: ObjectStorage,
    *,
    sample_id: uuid.UUID,
    owner_id: uuid.UUID,
    voice_id: uuid.UUID,
    path: str,
    provider: str,
    transcript: str | None,
    language: str | None,
) -> NewSample:
    """The sample a client PUT to `voice-samples/path` through a signed upload URL, checked as `check_upload`
    checks one sent in a request: present (SampleNotUploaded), within `provider`'s size limit, and audio by its
    first bytes (UnsupportedAudio), of which no more is read."""
    info = await storage.info(BUCKET, path)
    if info is None:
        raise SampleNotUploaded
    check_size(info.size, provider)
    sniffed = sniff_audio(await storage.head(BUCKET, path, SNIFF_BYTES))
    if sniffed is None:
        raise UnsupportedAudio
    return NewSample(
        sample_id=sample_id,
        owner_id=owner_id,
        voice_id=voice_id,
        path=path,
        declared_type=info.content_type,
        sniffed_type=sniffed,
        size_bytes=info.size,
        provider=provider,
        transcript=transcript,
        language=language,
    )


def check_size(size: int | None, provider: str) -> None:
    """SampleTooLarge when `provider` accepts less than `size` bytes (a bucket's own limit is Storage's)."""
    limit = sample_rules(provider).max_bytes
    if limit is not None and (size or 0) > limit:
        raise SampleTooLarge(f"The sample is {size} bytes; {provider} accepts at most {limit}.")


@contextlib.asynccontextmanager
async def stored_upload(
    storage: ObjectStorage, path: str, upload: ReceivedUpload, mime: str, *, abandoned: str | None = None
) -> AsyncIterator[None]:
    """Upload the sample to `voice-samples/path`; if the body (which writes its rows) fails, remove it.

    If even the removal fails the object stays in its owner's folder with no row, which the orphan
    sweep removes once it is past its grace period; the request still fails with the original error.
    `abandoned` is where an earlier try of the same request may have stored it before its process died
    (an Idempotency-Key's abandoned claim, `backend.http.idempotency`): that try can no longer commit, so
    its object is removed first, and the request stores its sample once.
    """
    if abandoned is not None:
        await _remove(storage, abandoned, "the sample an abandoned try of this upload stored")
    await storage.upload(BUCKET, path, upload.file, mime)
    failpoint("after_upload_stored")
    try:
        yield
    except BaseException:
        await _remove(storage, path, "the sample of a failed upload")
        raise


async def _remove(storage: ObjectStorage, path: str, what: str) -> None:
    """Remove `voice-samples/path` if it is there; a failure is logged and left to the orphan sweep."""
    try:
        await storage.remove(BUCKET, [path])
    except StorageUnavailable:
        pass  # logged as Storage's outage
    except Exception:
        log.exception("could not remove %s", what)


async def insert_sample(
    conn: Connection, sample: NewSample, consent_id: uuid.UUID, *, status: VoiceSampleStatus, retention_days: float
) -> SampleRow:
    """The sample's row under `consent_id`, as the service (on a transaction that wrote the consent).

    `status`: `ready` when the clone attempt checks the audio itself, `pending` for the sample queue.
    """
    params = msgspec.structs.asdict(sample) | {
        "consent_id": consent_id,
        "bucket_id": BUCKET,
        "status": status,
        "retention_days": retention_days,
    }
    return await fetch_record(conn, _Q["insert_sample"], params, SampleRow)


def status_of(row: dict[str, Any]) -> SampleStatus:
    """A sample as its owner sees it, from its row."""
    quality = None if row["quality"] is None else msgspec.convert(row["quality"], QualityReport)
    return SampleStatus(**{**row, "quality": quality})


async def visible(conn: Connection, sample_id: uuid.UUID) -> bool:
    """Whether the sample is visible on `conn` (the caller's own, under RLS)."""
    return await fetch_optional(conn, _Q["visible_sample"], {"id": sample_id}) is not None


async def link_voice(conn: Connection, sample_id: uuid.UUID, voice_id: uuid.UUID) -> None:
    """Record the voice cloned from the sample, so the next request reuses it."""
    await conn.execute(_Q["link_sample_voice"], {"voice_id": voice_id, "sample_id": sample_id})


async def consent_for_sample(conn: Connection, given: GivenConsent) -> uuid.UUID:
    """The consent a sample is stored under, on the caller's user transaction (RLS decides whose consent
    they may name): the verified spoken consent `given.consent_id`, or a checkbox consent recorded now, as
    the caller, from the ticked box. Refuses as `require_consent` does, and with NotFound, ConsentNotVerified
    or ConsentExpired a consent that cannot cover a sample."""
    require_consent(given)
    if given.consent_id is None:
        return await _record_checkbox(conn, given)
    await consent_voiceprint(conn, given.consent_id)
    return given.consent_id


async def consent_voiceprint(conn: Connection, consent_id: uuid.UUID) -> Voiceprint | None:
    """The speaker's voiceprint of the caller's verified spoken consent, on the caller's user transaction (RLS
    decides whose consent they may name); None while it is a print of GE2E waiting to be printed again
    (backend/samples/reprint.py); NotFound, ConsentNotVerified or ConsentExpired for one that cannot cover a
    sample."""
    row = await fetch_optional(conn, _Q["usable_consent"], {"id": consent_id})
    if row is None:
        raise NotFound("Consent not found.")
    check_covers_sample(row["state"])
    # RLS showed the consent to be the caller's; its voiceprint is biometric data, which only the service reads. A
    # verified consent keeps it until it is purged (voice_consents_verified_has_evidence).
    async with as_service(conn):
        printed = await fetch_one(conn, _Q["consent_voiceprint"], {"id": consent_id})
    return stored_print(printed["voiceprint"])


async def _record_checkbox(conn: Connection, given: GivenConsent) -> uuid.UUID:
    """The ticked box as a consent row, written as the user (RLS checks it is theirs), with the optional
    consent to keep the sample for re-enrolment, both under `CONSENT_TEXT_VERSION`."""
    row = await fetch_one(
        conn,
        _Q["insert_checkbox"],
        {
            "subject_name": given.subject_name,
            "consent_text_version": CONSENT_TEXT_VERSION,
            "keep_sample": given.keep_sample,
            **given.origin.recorded(),
        },
    )
    consent_id: uuid.UUID = row["id"]
    return consent_id


async def judge_sample(
    conn: Connection, consent_id: uuid.UUID, sample: SpeechPrints | None, judged_before: float | None = None
) -> SpeakerJudgement | None:
    """`judge_speaker` for a sample stored under `consent_id`, whose voiceprint is read as the service on `conn`;
    None when the consent is a checkbox one (nobody's voice to match)."""
    row = await fetch_optional(conn, _Q["consent_voiceprint"], {"id": consent_id})
    if row is None or row["kind"] != "spoken":
        return None
    printed = row["voiceprint"]
    consent = stored_print(printed)
    return judge_speaker(consent, sample, judged_before)
