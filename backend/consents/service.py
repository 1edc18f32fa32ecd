"""Spoken consent (`/api/v1/consents`), and the consent every sample is stored under.

A spoken consent is a phrase made for its subject (`backend.consents.phrase`: it names them and voicegate,
says what they agree to, and ends with a one-time code of four digits), which its subject records within
VOICEGATE_CONSENT_PHRASE_SECONDS. The recording is checked offline for the phrase's words and code, and for
speech; if it says the phrase, the consent is `verified` and keeps the recording and its speaker's
voiceprint (`backend.voiceprint`) as evidence, under the samples' retention. Otherwise it is `rejected`
with the reason (`synthetic_speech` for a recording that carries the watermark of synthesized speech:
`backend.watermark`), and another recording may follow while the phrase is valid; past its time it is `expired`.
What each state allows, and whether a sample's speaker is the consent's: `backend.policy.consent`; what a sample
is stored under: `backend.samples.upload.consent_for_sample`.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import msgspec

from backend import watermark
from backend.audio.decode import decode_audio
from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.auth.verify import UserClaims
from backend.consents.phrase import Phrase, PhraseCheck, check_phrase, make_phrase, refusal
from backend.consents.types import ConsentCreated, ConsentRequest, ConsentView, RecordingVerdict, Refusal, Verdict
from backend.context import DEFAULT_OWNERSHIP
from backend.cpu import CpuExecutor, long_calls
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.domain.limits import UserLimits
from backend.errors import (
    Conflict,
    NotFound,
    OpenConsentsLimited,
    UnsupportedAudio,
    ValidationFailed,
)
from backend.policy.consent import Origin, check_recordable
from backend.records import ownership, user_creates
from backend.records.user_creates import CreateKind
from backend.storage import integrity, paths
from backend.storage.client import ObjectStorage
from backend.voiceprint import THRESHOLD, Voiceprint, voiceprint

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: The longest recording of a phrase taken (a phrase takes about 8 s to say).
MAX_RECORDING_S: Final = 60.0
#: Where a consent's recording is kept: in its owner's folder of the samples' bucket, under the same retention.
RECORDING_BUCKET: Final = paths.SAMPLES
#: The consent wording spoken consents are recorded under: their own words are the phrase, kept with them.
SPOKEN_TEXT_VERSION: Final = "spoken-2026-11"
#: Who judges recordings and samples, as audit events name it.
ACTOR: Final = "consent-check"


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
    #: VOICEGATE_VOICE_OWNERSHIP: what a reading whose voice matches another account's print becomes.
    voice_ownership: ownership.Mode = "ask"
    #: From which cosine it matches (VOICEGATE_OWNERSHIP_THRESHOLD), and is the other's very voice.
    ownership_thresholds: ownership.Thresholds = DEFAULT_OWNERSHIP
    #: VOICEGATE_CONSENT_LANGUAGES: the languages a phrase is offered in.
    languages: tuple[str, ...] = ("en",)

    async def create_consent(self, claims: UserClaims, request: ConsentRequest, origin: Origin) -> ConsentCreated:
        """A spoken consent for the caller, awaiting the recording of its phrase (400 for a language this server
        does not offer, VOICEGATE_CONSENT_LANGUAGES; 429 `creates_limited` past the caller's creates,
        `open_consents_limited` while they have `open_consents` awaiting their recording)."""
        if request.language not in self.languages:
            raise ValidationFailed(
                f"Spoken consent is offered in {', '.join(self.languages)} on this server, not in"
                f" {request.language!r} (VOICEGATE_CONSENT_LANGUAGES)."
            )
        phrase = _phrase(request.subject_name.strip(), request.language)
        owner_id = uuid.UUID(claims.sub)
        async with self.db.service_transaction() as conn:
            return await self._insert_spoken(
                conn, owner_id, request.subject_name.strip(), phrase, origin, keep_sample=request.keep_sample
            )

    async def reading_for_sample(self, claims: UserClaims, sample_id: uuid.UUID, origin: Origin) -> ConsentCreated:
        """A phrase for the caller to read aloud so that voicegate hears the voice of their sample, which matched
        another account's, is theirs (docs/ownership.md): a spoken consent in the name and language of the sample's
        consent, whose verified reading is matched to the sample (`record_recording`); the newest phrase given is
        the one that answers. 404 for anyone else's sample, 409 for one that waits for no reading; counted as a
        spoken consent (429 as for `create_consent`)."""
        owner_id = uuid.UUID(claims.sub)
        async with self.db.user_statement(claims.raw) as conn:
            sample = await fetch_optional(conn, _Q["sample_to_read"], {"id": sample_id})
        if sample is None:
            raise NotFound("Sample not found.")
        if sample["status"] != "awaiting_reading":
            raise Conflict(f"The sample is {sample['status']}: it waits for no reading.")
        # The sample's consent's language, unless the server no longer offers it.
        language = sample["language"] if sample["language"] in self.languages else self.languages[0]
        phrase = _phrase(sample["subject_name"], language)
        async with self.db.service_transaction() as conn:
            created = await self._insert_spoken(conn, owner_id, sample["subject_name"], phrase, origin)
            await ownership.ask_to_read(conn, sample_id, created.consent_id)
        return created

    async def _insert_spoken(
        self,
        conn: Connection,
        owner_id: uuid.UUID,
        subject_name: str,
        phrase: Phrase,
        origin: Origin,
        *,
        keep_sample: bool = False,
    ) -> ConsentCreated:
        """A spoken consent awaiting the recording of `phrase`, counted against the owner's creates and open
        consents, on `conn`'s service transaction."""
        await user_creates.take(conn, owner_id, CreateKind.CONSENT, self.limits)
        row = await fetch_optional(
            conn,
            _Q["insert_spoken"],
            {
                "owner_id": owner_id,
                "subject_name": subject_name,
                "consent_text_version": SPOKEN_TEXT_VERSION,
                "keep_sample": keep_sample,
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
        with long_calls():  # seconds of CPU in one call: no other user's short work waits behind it
            heard = await self.cpu.run(owner_id, _hear, data, phrase)
        # No clone of a clone: voicegate's own speech (or any Perth-marked speech) consents to nothing.
        reason: Refusal | None = "synthetic_speech" if heard.marked else refusal(heard.check)
        speaker = heard.print
        if reason is not None or speaker is None:
            return await _reject(self.db, consent_id, reason or "not_speech", heard.check)
        path = paths.consent_recording(owner_id, consent_id)
        async with self.db.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
            await _lock_recordable(conn, consent_id)
            # Compared with every other account's prints whatever the mode, so that the answer takes as long
            # whether or not a print matches. A reading is live speech: it backs its own print.
            owned = await ownership.judge(
                conn,
                self.voice_ownership,
                self.ownership_thresholds,
                owner_id=owner_id,
                vector=speaker.vector,
                read=True,
                consent_id=consent_id,
                actor=ACTOR,
            )
            if owned == "refused":
                await _write_rejection(conn, consent_id, "ownership_refused", heard.check)
                return RecordingVerdict(
                    consent_id, "rejected", heard.check.word_accuracy, heard.check.speech_seconds, "ownership_refused"
                )
            status: Verdict = "verified" if owned == "clear" else "held"
            await conn.execute(
                _Q["verify"],
                {
                    "id": consent_id,
                    "status": status,
                    "path": path,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "voiceprint": speaker.to_bytes(),
                    "word_accuracy": heard.check.word_accuracy,
                    "speech_seconds": heard.check.speech_seconds,
                    "retention_days": self.retention_days,
                },
            )
            if status == "verified":
                await ownership.register_consent(conn, consent_id, speaker.vector)
            await self._answer(conn, consent_id, speaker, status)
            await record_audit(
                conn,
                ACTOR,
                f"consent.{status}",
                "voice_consent",
                consent_id,
                detail={"wordAccuracy": heard.check.word_accuracy, "speechSeconds": heard.check.speech_seconds},
            )
            # Stored last, on the row's transaction: a recording whose row did not commit is claimed by nothing and
            # goes with the orphan sweep. A held consent keeps it too: it is what the operator listens to.
            await integrity.write(conn, self.storage, RECORDING_BUCKET, path, data, content_type=content_type)
        return RecordingVerdict(consent_id, status, heard.check.word_accuracy, heard.check.speech_seconds)

    async def _answer(self, conn: Connection, consent_id: uuid.UUID, reading: Voiceprint, status: Verdict) -> None:
        """When the reading verifying (or holding) `consent_id` was asked for by a sample whose voice matched another
        account's (`reading_for_sample`): settle that sample with it (`backend.records.ownership.answer`). A reading
        held for review itself holds the sample too."""
        question = await ownership.question_for(conn, consent_id)
        if question is None:
            return
        same_voice = -1.0 if status == "held" else self.ownership_thresholds.same_voice
        await ownership.answer(conn, question, reading.vector, THRESHOLD, same_voice, actor=ACTOR)


def _phrase(subject_name: str, language: str) -> Phrase:
    """A new phrase for `subject_name` in `language`; ValidationFailed (400) for a name it cannot be made with."""
    try:
        return make_phrase(subject_name, language)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc


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
    (CPU-bound: about 5 CPU-s for a 60 s recording, the print 2.4 s, the phrase 1.3 s, the mark 0.9 s)."""
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
    async with db.service_transaction() as conn:
        await _lock_recordable(conn, consent_id)
        await _write_rejection(conn, consent_id, reason, check)
    return RecordingVerdict(consent_id, "rejected", check.word_accuracy, check.speech_seconds, reason)


async def _write_rejection(conn: Connection, consent_id: uuid.UUID, reason: Refusal, check: PhraseCheck) -> None:
    """Reject the locked consent for `reason`, with its audit event."""
    accuracy, seconds = check.word_accuracy, check.speech_seconds
    params = {"id": consent_id, "refusal": reason, "word_accuracy": accuracy, "speech_seconds": seconds}
    await conn.execute(_Q["reject"], params)
    detail = {"reason": reason, "wordAccuracy": accuracy, "speechSeconds": seconds}
    await record_audit(conn, ACTOR, "consent.rejected", "voice_consent", consent_id, detail=detail)
