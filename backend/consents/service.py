"""Spoken consent (`/api/v1/consents`), and the consent every sample is stored under.

A spoken consent is a phrase made for its subject (`backend.consents.phrase`: it names them and voicegate,
says what they agree to, and ends with a one-time code of four digits), which its subject records within
VOICEGATE_CONSENT_PHRASE_SECONDS. The recording is checked offline for the phrase's words and code, and for
speech; if it says the phrase, the consent is `verified` and keeps the recording and its speaker's
voiceprint (`backend.voiceprint`) as evidence, under the samples' retention. Otherwise it is `rejected`
with the reason (`synthetic_speech` for a recording that carries the watermark of synthesized speech:
`backend.watermark`), and another recording may follow while the phrase is valid; past its time it is `expired`.
What each state allows: `backend.consents.states`. Every sample stored under a spoken consent must be its
speaker: the sample check compares their voiceprints (`judge_sample`).

`consent_for_sample` is the one place a sample route decides what its sample is stored under: a verified
spoken consent named by `consentId` (checked as the caller, under RLS), or, unless `VOICEGATE_CONSENT=spoken`,
a checkbox consent recorded with the upload.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

import msgspec

from backend import watermark
from backend.audio.decode import decode_audio
from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.auth.verify import UserClaims
from backend.consents.phrase import Phrase, PhraseCheck, check_phrase, make_phrase, refusal
from backend.consents.states import State, check_covers_sample, check_recordable
from backend.cpu import CpuExecutor
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database, as_service
from backend.errors import (
    Conflict,
    ConsentRecordingRequired,
    ConsentRequired,
    NotFound,
    OpenConsentsLimited,
    UnsupportedAudio,
    ValidationFailed,
)
from backend.fields import LanguageTag, Name
from backend.records import user_creates
from backend.records.user_creates import CreateKind, UserLimits
from backend.storage import integrity
from backend.storage.client import ObjectStorage
from backend.voiceprint import THRESHOLD, SpeechPrints, Voiceprint, voiceprint
from backend.voiceprint.windows import Stretch, unlike, wholly_unlike

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: The longest recording of a phrase taken (a phrase takes about 8 s to say).
MAX_RECORDING_S: Final = 60.0
#: Where a consent's recording is kept: in its owner's folder of the samples' bucket, under the same retention.
RECORDING_BUCKET: Final = "voice-samples"
#: The consent wording a client showed beside the checkbox; bump when the text changes so records say which
#: one was agreed to (`backend.consents.wording` keeps every version's words).
CONSENT_TEXT_VERSION: Final = "2026-12"
#: The consent wording spoken consents are recorded under: their own words are the phrase, kept with them.
SPOKEN_TEXT_VERSION: Final = "spoken-2026-11"
#: Who judges recordings and samples, as audit events name it.
ACTOR: Final = "consent-check"

Policy = Literal["checkbox", "spoken"]
Verdict = Literal["verified", "rejected"]
Refusal = Literal["phrase_mismatch", "too_noisy", "not_speech", "too_short", "synthetic_speech"]


class ConsentRequest(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    """`POST /api/v1/consents`: whose voice (named in the phrase), the phrase's language, and whether the
    samples made under it may be kept while their voice exists (for moving it to another provider)."""

    subject_name: Name
    language: LanguageTag = "en"
    keep_sample: bool = False


class ConsentCreated(msgspec.Struct, frozen=True, rename="camel"):
    """The phrase to record, before `expiresAt`."""

    consent_id: uuid.UUID
    phrase: str
    status: State
    expires_at: datetime


class RecordingVerdict(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """What the recording was found to say: `verified`, or `rejected` with the reason."""

    consent_id: uuid.UUID
    status: Verdict
    word_accuracy: float
    speech_seconds: float
    reason: Refusal | None = None


class ConsentView(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """A consent as its owner sees it (never its code apart from the phrase, nor its voiceprint)."""

    consent_id: uuid.UUID
    kind: Literal["checkbox", "spoken"]
    #: Its state (`backend.consents.states`): `expired` once its phrase's time passed unverified, `purged` once
    #: its evidence was.
    status: State
    subject_name: str
    language: str | None = None
    phrase: str | None = None
    expires_at: datetime | None = None
    word_accuracy: float | None = None
    speech_seconds: float | None = None
    #: Why its last recording was rejected; `expired` once it has expired.
    reason: Refusal | Literal["expired"] | None = None
    verified_at: datetime | None = None
    #: When the recording and its voiceprint are purged: the samples' retention after it was verified, or the
    #: end of the latest sample's stored under it.
    evidence_expires_at: datetime | None = None
    #: When they were purged; from then on the consent covers no new sample.
    evidence_purged_at: datetime | None = None


class Origin(msgspec.Struct, frozen=True):
    """Where a consent was given from, kept with it: the client's user agent, and its address's hash."""

    user_agent: str | None
    client_ip: str | None

    def recorded(self) -> dict[str, str | None]:
        """As the consent row keeps it: the user agent (cut to 1,000 characters) and a hash of the address,
        enough to tell requests apart in an audit without keeping the address itself."""
        return {
            "user_agent": (self.user_agent or "")[:1000] or None,
            "ip_hash": hashlib.sha256(self.client_ip.encode()).hexdigest() if self.client_ip else None,
        }


class GivenConsent(msgspec.Struct, frozen=True, kw_only=True):
    """What a sample request says of its consent: the ticked box (`checkbox`), or a spoken consent's id; and
    what the deployment asks for (`policy`, VOICEGATE_CONSENT)."""

    checkbox: bool
    consent_id: uuid.UUID | None
    subject_name: str
    origin: Origin
    policy: Policy
    keep_sample: bool = False


def require_consent(given: GivenConsent) -> None:
    """Refuse, before anything is read or stored, a sample request that names no consent its deployment
    takes: ConsentRecordingRequired under the `spoken` policy without a consent id; ConsentRequired with
    neither a ticked box nor a consent id. The consent named is checked as the caller by
    `consent_for_sample`."""
    if given.consent_id is None:
        if given.policy == "spoken":
            raise ConsentRecordingRequired
        if not given.checkbox:
            raise ConsentRequired


class SpeakerJudgement(msgspec.Struct, frozen=True):
    """How well a sample's speaker matches its consent's: the cosine of their voiceprints (`score`, which must
    reach `THRESHOLD`), the stretches of the sample's speech whose windows are not the consent's speaker
    (`unlike`, which must be none: `backend.voiceprint.windows`), whether that is all of it (`wholly`: then
    the score says it), and whether it passes both."""

    score: float
    matched: bool
    unlike: tuple[Stretch, ...] = ()
    wholly: bool = False


@dataclass(frozen=True)
class ConsentsService:
    """Spoken consents: their use cases over the database, Storage (where a verified recording is kept), the CPU
    executor (that hears a recording) and the samples' retention (which the evidence is kept under)."""

    db: Database
    storage: ObjectStorage
    cpu: CpuExecutor
    #: VOICEGATE_SAMPLE_RETENTION_DAYS: how long a verified recording is kept.
    retention_days: float
    #: What one user may create: spoken consents count against `creates` and `open_consents`.
    limits: UserLimits
    #: VOICEGATE_CONSENT_PHRASE_SECONDS: how long a phrase may be recorded in after it is made.
    phrase_seconds: int

    async def create_consent(self, claims: UserClaims, request: ConsentRequest, origin: Origin) -> ConsentCreated:
        """A spoken consent for the caller, awaiting the recording of its phrase (422 for a language the
        phrase cannot be checked in; 429 `creates_limited` past the caller's creates, `open_consents_limited`
        while they have `open_consents` awaiting their recording)."""
        try:
            phrase = make_phrase(request.subject_name.strip(), request.language)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from exc
        owner_id = uuid.UUID(claims.sub)
        async with self.db.service_transaction() as conn:
            await user_creates.take(conn, owner_id, CreateKind.CONSENT, self.limits)
            row = await fetch_optional(
                conn,
                _Q["insert_spoken"],
                {
                    "owner_id": owner_id,
                    "subject_name": request.subject_name.strip(),
                    "consent_text_version": SPOKEN_TEXT_VERSION,
                    "keep_sample": request.keep_sample,
                    "phrase": phrase.text,
                    "code": phrase.code,
                    "language": phrase.language,
                    "valid_seconds": self.phrase_seconds,
                    "open_consents": self.limits.open_consents,
                    **origin.recorded(),
                },
            )
            if row is None:
                await _refuse_open(conn, owner_id, self.limits.open_consents)
        return ConsentCreated(row["id"], row["phrase"], row["status"], row["expires_at"])

    async def get_consent(self, claims: UserClaims, consent_id: uuid.UUID) -> ConsentView:
        """The caller's consent (404 for anyone else's)."""
        async with self.db.user_statement(claims.raw) as conn:
            row = await fetch_optional(conn, _Q["visible_consent"], {"id": consent_id})
        if row is None:
            raise NotFound("Consent not found.")
        return _view(row)

    async def record_recording(self, *, claims: UserClaims, consent_id: uuid.UUID, data: bytes) -> RecordingVerdict:
        """Judge the caller's recording of their consent's phrase: `verified` (the recording and its voiceprint
        kept as evidence, the recording at `{owner}/consents/{id}/recording` in the samples' bucket) or
        `rejected` with the reason. 404 for anyone else's consent; refused before the audio is read, 422
        `consent_expired` once its phrase's time passed and 409 for one that takes no recording (checkbox,
        verified); the audio's own refusals (not audio, too long) as for samples. Either verdict is audited."""
        owner_id = uuid.UUID(claims.sub)
        async with self.db.user_statement(claims.raw) as conn:
            row = await fetch_optional(conn, _Q["visible_consent"], {"id": consent_id})
        if row is None:
            raise NotFound("Consent not found.")
        check_recordable(row["state"])
        content_type = sniff_audio(data[:SNIFF_BYTES])
        if content_type is None:
            raise UnsupportedAudio
        phrase = Phrase(text=row["phrase"], code=row["code"], language=row["language"])
        heard = await self.cpu.run(owner_id, _hear, data, phrase)
        # No clone of a clone: voicegate's own speech (or any Perth-marked speech) consents to nothing.
        reason: Refusal | None = "synthetic_speech" if heard.marked else refusal(heard.check)
        speaker = heard.print
        if reason is not None or speaker is None:
            return await _reject(self.db, consent_id, reason or "not_speech", heard.check)
        path = recording_path(owner_id, consent_id)
        async with self.db.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
            await _lock_recordable(conn, consent_id)
            await conn.execute(
                _Q["verify"],
                {
                    "id": consent_id,
                    "path": path,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "voiceprint": speaker.to_bytes(),
                    "word_accuracy": heard.check.word_accuracy,
                    "speech_seconds": heard.check.speech_seconds,
                    "retention_days": self.retention_days,
                },
            )
            await record_audit(
                conn,
                ACTOR,
                "consent.verified",
                "voice_consent",
                consent_id,
                detail={"wordAccuracy": heard.check.word_accuracy, "speechSeconds": heard.check.speech_seconds},
            )
            # Stored last, on the row's transaction: a recording whose row did not commit is claimed by nothing and
            # goes with the orphan sweep.
            await integrity.write(conn, self.storage, RECORDING_BUCKET, path, data, content_type=content_type)
        return RecordingVerdict(consent_id, "verified", heard.check.word_accuracy, heard.check.speech_seconds)


def _view(row: Mapping[str, Any]) -> ConsentView:
    expired = row["state"] == "expired"
    return ConsentView(
        consent_id=row["id"],
        kind=row["kind"],
        status=row["state"],
        subject_name=row["subject_name"],
        language=row["language"],
        phrase=row["phrase"],
        expires_at=row["expires_at"],
        word_accuracy=row["word_accuracy"],
        speech_seconds=row["speech_seconds"],
        reason="expired" if expired else row["refusal"],
        verified_at=row["verified_at"],
        evidence_expires_at=row["evidence_expires_at"],
        evidence_purged_at=row["evidence_purged_at"],
    )


class _Heard(msgspec.Struct, frozen=True):
    """What the CPU executor found in a recording."""

    check: PhraseCheck
    print: Voiceprint | None
    #: Whether it carries the watermark of synthesized speech.
    marked: bool


def _hear(data: bytes, phrase: Phrase) -> _Heard:
    """Decode the recording, check it says `phrase`, take its speaker's voiceprint and look for the watermark
    (CPU-bound)."""
    decoded = decode_audio(data, max_duration_s=MAX_RECORDING_S)
    return _Heard(
        check_phrase(decoded.samples, decoded.sample_rate, phrase),
        voiceprint(decoded.samples, decoded.sample_rate),
        watermark.detect(decoded.samples, decoded.sample_rate).present,
    )


async def _refuse_open(conn: Connection, owner_id: uuid.UUID, cap: int) -> NoReturn:
    """OpenConsentsLimited for an owner with `cap` spoken consents awaiting their recording, whose Retry-After is
    when the first of them lapses and frees a place."""
    row = await fetch_one(conn, _Q["first_open_lapses"], {"owner_id": owner_id})
    wait = max(1, math.ceil(row["seconds"] or 1))
    raise OpenConsentsLimited(
        f"You have {cap} spoken consents awaiting their recording, as many as this server allows: record one"
        f" (POST /api/v1/consents/{{id}}/recording), or retry in {wait} s, when the oldest lapses.",
        retry_after=wait,
    )


async def _lock_recordable(conn: Connection, consent_id: uuid.UUID) -> None:
    """Lock the consent for its verdict, refused as `check_recordable` refuses it in the state it is in now: another
    recording verified it meanwhile (Conflict), or its phrase's time ran out while this one was judged
    (ConsentExpired). A consent deleted meanwhile is a Conflict too."""
    locked = await fetch_optional(conn, _Q["lock_consent"], {"id": consent_id})
    if locked is None:
        raise Conflict("The consent changed while its recording was judged; read it again.")
    check_recordable(locked["state"])


async def _reject(db: Database, consent_id: uuid.UUID, reason: Refusal, check: PhraseCheck) -> RecordingVerdict:
    accuracy, seconds = check.word_accuracy, check.speech_seconds
    async with db.service_transaction() as conn:
        await _lock_recordable(conn, consent_id)
        params = {"id": consent_id, "refusal": reason, "word_accuracy": accuracy, "speech_seconds": seconds}
        await conn.execute(_Q["reject"], params)
        detail = {"reason": reason, "wordAccuracy": accuracy, "speechSeconds": seconds}
        await record_audit(conn, ACTOR, "consent.rejected", "voice_consent", consent_id, detail=detail)
    return RecordingVerdict(consent_id, "rejected", accuracy, seconds, reason)


def recording_path(owner_id: uuid.UUID, consent_id: uuid.UUID) -> str:
    """Where a consent's recording is kept: in its owner's folder, as the storage policies require."""
    return f"{owner_id}/consents/{consent_id}/recording"


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


async def consent_voiceprint(conn: Connection, consent_id: uuid.UUID) -> Voiceprint:
    """The speaker's voiceprint of the caller's verified spoken consent, on the caller's user transaction (RLS
    decides whose consent they may name); NotFound, ConsentNotVerified or ConsentExpired for one that cannot
    cover a sample."""
    row = await fetch_optional(conn, _Q["usable_consent"], {"id": consent_id})
    if row is None:
        raise NotFound("Consent not found.")
    check_covers_sample(row["state"])
    # RLS showed the consent to be the caller's; its voiceprint is biometric data, which only the service reads. A
    # verified consent keeps it until it is purged (voice_consents_verified_has_evidence).
    async with as_service(conn):
        printed = await fetch_one(conn, _Q["consent_voiceprint"], {"id": consent_id})
    return Voiceprint.from_bytes(bytes(printed["voiceprint"]))


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
    """How well a sample's speaker matches the speaker of its consent, as the service on `conn`: its voiceprint,
    and its speech window by window, so that another voice spliced into it is refused however much of the
    consent's voice is around it. None when the consent is a checkbox one (nobody's voice to match). A sample
    without speech enough for a voiceprint matches nobody. Once the consent's evidence is purged, a sample
    judged before (`judged_before`, its score then: a kept sample cleaned again for another provider) keeps
    that judgement, and any other matches nobody."""
    row = await fetch_optional(conn, _Q["consent_voiceprint"], {"id": consent_id})
    if row is None or row["kind"] != "spoken":
        return None
    if row["voiceprint"] is None:
        score = 0.0 if judged_before is None else judged_before
        return SpeakerJudgement(score=score, matched=score >= THRESHOLD)
    made = None if sample is None else sample.voiceprint()
    if sample is None or made is None:
        return SpeakerJudgement(score=0.0, matched=False)
    consent = Voiceprint.from_bytes(bytes(row["voiceprint"]))
    score = made.similarity(consent)
    stretches = tuple(unlike(sample, consent))
    return SpeakerJudgement(
        score=round(score, 4),
        matched=score >= THRESHOLD and not stretches,
        unlike=stretches,
        wholly=wholly_unlike(sample, consent),
    )
