"""A sample's check, which the sample queue's step (`backend.samples.step`) and an enrolment (`backend.clone.step`)
both run: the original checked against a provider's rules and cleaned, its speaker judged, the cleaned copy stored
and recorded; and what an enrolment sends of a sample.

Checking is safe to repeat: the row is updated in place and the cleaned copy written under a fixed name
beside the original, in that update's transaction and with its digest recorded. A sample deleted while
it is being checked gets no copy: the update finds no row, and nothing is written. A stored copy (or an
original the retention removed, leaving only the copy) is read back checked against its digest: one
that has changed fails the sample with `stored_object_altered` and is never sent to a provider.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from backend import watermark
from backend.audio.decode import decode_audio
from backend.audio.errors import (
    AudioRejected,
    SampleAwaitingReading,
    SampleHeld,
    SampleOwnershipRefused,
    SampleSpeakersMixed,
    SpeakerMismatch,
    SyntheticSpeech,
)
from backend.audio.pipeline import PreparedSample, prepare_for
from backend.context import WorkerContext
from backend.cpu import long_calls
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries
from backend.errors import StorageUnavailable, StoredObjectAltered
from backend.policy.consent import SpeakerJudgement
from backend.providers.base import SampleRef, SampleRules
from backend.providers.registry import sample_rules
from backend.records import ownership
from backend.records.sample_rows import SampleRow, VoiceSampleStatus
from backend.samples.reprint import reprint_consent
from backend.samples.upload import judge_sample
from backend.storage import integrity, paths
from backend.voiceprint import THRESHOLD, SpeechPrints, Voiceprint, speech_prints
from backend.voiceprint.windows import REFERENCE_THRESHOLD, SELF_THRESHOLD, named, second_voice

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: How long a provider may take to fetch the prepared sample from its signed URL.
SAMPLE_URL_SECONDS = 600
#: All a held sample's owner is told, whatever it matched (docs/ownership.md).
HELD_FOR_REVIEW = (
    "held_for_review: the sample is held for a person to review, as its voice sounds the same as one already enrolled"
    " here; nothing of it is used until they have, and this site's support can say more"
)
#: All an asked sample's owner is told: what to do next, and nothing of what it matched.
AWAITING_READING = (
    "reading_required: before this sample is used, its speaker reads a short phrase aloud"
    " (POST /api/v1/voice-samples/{id}/reading gives one), so voicegate can hear that the voice is theirs"
)


class SampleGone(Exception):
    """The sample row was deleted (by its owner or the retention purge) while it was being prepared."""


class Checked(NamedTuple):
    """A sample cleaned for a provider and recorded, with its speaker's voiceprint as recorded (`to_bytes`; None
    when it holds too little speech for one)."""

    prepared: PreparedSample
    voiceprint: bytes | None


class EnrolmentSample(NamedTuple):
    """What an enrolment sends of one sample, and the voiceprint of that very audio as the sample's check recorded
    it (`to_bytes`): None when the check recorded none (too little speech, or a sample checked before prints were
    taken), and the print is then to be taken from `ref.data`."""

    ref: SampleRef
    voiceprint: bytes | None


class SampleCheck:
    """One sample's check, with audit events for `actor`: its original checked and cleaned for a provider
    (`prepare_and_record`), or what an enrolment sends of it (`enrolment_sample`)."""

    def __init__(self, ctx: WorkerContext, sample: SampleRow, *, actor: str) -> None:
        self.ctx = ctx
        self.sample = sample
        self.actor = actor

    async def prepare_and_record(self, provider: str) -> Checked:
        """Check the sample's original against `provider`'s rules, clean it into the provider's wanted form,
        store the copy beside the original and record it with the quality report (status `ready`).

        A refused sample is recorded as `failed` with the reason and, when it decoded, the report; the
        `AudioRejected` is raised on. Raises `SampleGone` when the row vanished meanwhile, and
        StoredObjectAltered (the sample failed, an audit event) when the stored copy it had to start from has
        changed.
        """
        ctx, sample = self.ctx, self.sample
        # A kept sample whose retention ended has only its cleaned copy left: that is cleaned again.
        kept_copy = sample.processed_object_path if sample.original_removed_at is not None else None
        original = await self._read(kept_copy or sample.object_path)
        try:
            with long_calls(
                queued=True
            ):  # seconds of CPU for a long sample: no other user's short work waits behind it
                prepared, prints = await ctx.cpu.run(
                    sample.owner_id, _prepare_and_print, original, sample_rules(provider)
                )
        except AudioRejected as exc:
            report = None if exc.report is None else msgspec.json.encode(exc.report).decode()
            rejected = {"sample_id": sample.id, "reason": str(exc), "quality_report": report}
            async with ctx.db.service_transaction() as conn:
                await conn.execute(_Q["record_rejected_sample"], rejected)
            raise
        del original
        copy_path = paths.processed(sample.object_path)
        report = msgspec.json.encode(prepared.report).decode()
        judged = await self._judge_speaker(prints, report)
        speaker = None if prints is None else prints.voiceprint()
        speaker_bytes = None if speaker is None else speaker.to_bytes()
        owned: ownership.Verdict = "clear"
        async with ctx.db.service_transaction(budget=integrity.WRITE_BUDGET_SECONDS) as conn:
            recorded = await fetch_optional(
                conn,
                _Q["record_processed_sample"],
                {
                    "sample_id": sample.id,
                    "processed_object_path": copy_path,
                    "processed_provider": provider,
                    "quality_report": report,
                    "duration_ms": round(prepared.duration_s * 1000),
                    "sample_rate": prepared.sample_rate,
                    "channels": prepared.channels,
                    "voiceprint": speaker_bytes,
                    "speaker_match": None if judged is None else judged.score,
                    "speech_prints": None if prints is None else prints.to_bytes(),
                },
            )
            if recorded is None:
                raise SampleGone(str(sample.id))
            if speaker is not None:
                # A spoken consent's reader whose voice the sample matched backs it with a live reading.
                owned = await self._judge_owner(conn, speaker, read=judged is not None and judged.matched)
            # A held or asked sample keeps its cleaned copy: released, it is ready as it stands.
            await integrity.write(
                conn, ctx.storage, sample.bucket_id, copy_path, prepared.wav, content_type=prepared.mime_type
            )
        if owned == "held":
            raise SampleHeld(HELD_FOR_REVIEW)
        if owned == "asked":
            raise SampleAwaitingReading(AWAITING_READING)
        if owned == "refused":
            raise SampleOwnershipRefused(ownership.SAMPLE_REFUSAL)
        return Checked(prepared, speaker_bytes)

    async def _judge_owner(self, conn: Connection, speaker: Voiceprint, *, read: bool) -> ownership.Verdict:
        """Compare the sample's voice with every other account's prints (`backend.records.ownership`) on the
        transaction that records it ready: registered under its owner when nothing matched (or the live reading of
        its consent, `read`, settles the match), else `awaiting_reading` (its uploader asked to read a phrase),
        `held` (or failed, under VOICEGATE_VOICE_OWNERSHIP=refuse) with nothing said of what it matched."""
        sample = self.sample
        owned = await ownership.judge(
            conn,
            self.ctx.voice_ownership,
            self.ctx.ownership_thresholds,
            owner_id=sample.owner_id,
            vector=speaker.vector,
            read=read,
            sample_id=sample.id,
            actor=self.actor,
        )
        if owned == "clear":
            await ownership.register_sample(conn, sample.id, speaker.vector)
        elif owned == "held":
            await conn.execute(_Q["hold_sample"], {"sample_id": sample.id})
        elif owned == "asked":
            await conn.execute(_Q["ask_sample"], {"sample_id": sample.id})
        else:
            await conn.execute(_Q["refuse_owned_sample"], {"sample_id": sample.id, "reason": ownership.SAMPLE_REFUSAL})
        return owned

    async def enrolment_sample(self, provider: str) -> EnrolmentSample:
        """What an enrolment sends: the stored cleaned copy (checked against its digest) when it was made for
        this provider, otherwise the original checked and cleaned now; with the voiceprint its check recorded of
        that copy. Raises `AudioRejected`, `SampleGone` or StoredObjectAltered like `prepare_and_record`; the
        provider's signed URL, when it gets one, is of the copy just checked or just written."""
        sample = self.sample
        copy_path = sample.processed_object_path
        made_for = sample.processed_provider
        if sample.status is VoiceSampleStatus.READY and copy_path and made_for == provider and sample.duration_ms:
            report = sample.quality_report or {}
            ref = SampleRef(
                data=await self._read(copy_path),
                mime_type="audio/wav",
                duration_s=sample.duration_ms / 1000,
                sample_rate=sample.sample_rate,
                channels=1,
                snr_db=report.get("snrDb"),  # the stored QualityReport, camel-cased
            )
            # Recorded with the copy, in the transaction that wrote it: the print of these very bytes.
            speaker = sample.voiceprint
        else:
            prepared, speaker = await self.prepare_and_record(provider)
            copy_path = paths.processed(sample.object_path)
            ref = prepared.sample_ref()
        ref = msgspec.structs.replace(ref, consent_id=str(sample.consent_id))
        if self.ctx.public_storage:
            url = await self.ctx.storage.create_signed_url(sample.bucket_id, copy_path, SAMPLE_URL_SECONDS)
            ref = msgspec.structs.replace(ref, public_url=url)
        return EnrolmentSample(ref, speaker)

    async def _judge_speaker(self, prints: SpeechPrints | None, report: str) -> SpeakerJudgement | None:
        """How the sample's speaker matches its consent's (None under a checkbox consent, where the sample must
        hold one speaker: a stretch whose windows are not the voice of the rest fails it `mixed_speakers`). One
        that is not its consent's speaker, as a whole or in any stretch of its speech, fails the sample with the
        score, the seconds and an audit event, and raises SpeakerMismatch: nothing of it reaches a provider."""
        sample, ctx = self.sample, self.ctx
        # A consent printed by GE2E, the encoder before, is printed again from its reading first: a sample is never
        # judged against a print of the other encoder (a no-op once it has been).
        reprinted = await reprint_consent(ctx.db, ctx.storage, ctx.cpu, sample.consent_id, actor=self.actor)
        if reprinted is not None and reprinted.outcome == "error":
            # Its reading could not be read: the step is tried again, rather than the sample judged against nothing.
            raise StorageUnavailable(f"the consent's voiceprint could not be made again: {reprinted.error}")
        async with ctx.db.service_transaction() as conn:
            judged = await judge_sample(conn, sample.consent_id, prints, sample.speaker_match)
            refused = _refusal(judged, prints)
            if refused is None:
                return judged
            refusal, action, detail = refused
            speaker = None if prints is None else prints.voiceprint()
            await conn.execute(
                _Q["record_mismatched_sample"],
                {
                    "sample_id": sample.id,
                    "reason": str(refusal),
                    "quality_report": report,
                    "voiceprint": None if speaker is None else speaker.to_bytes(),
                    "speaker_match": None if judged is None else judged.score,
                    "speech_prints": None if prints is None else prints.to_bytes(),
                },
            )
            await record_audit(
                conn, self.actor, action, "voice_sample", sample.id, detail={"consentId": sample.consent_id, **detail}
            )
        raise refusal

    async def _read(self, path: str) -> bytes:
        """The sample's stored object at `path`, checked against its digest. One that has changed since it
        was written fails the sample (for good: it is the copy voicegate would send) and raises
        StoredObjectAltered."""
        ctx, sample = self.ctx, self.sample
        try:
            return await integrity.read(
                ctx.db, ctx.storage, sample.bucket_id, path, actor=self.actor, subject=("voice_sample", sample.id)
            )
        except StoredObjectAltered as exc:
            async with ctx.db.service_transaction() as conn:
                await conn.execute(_Q["fail_altered_sample"], {"sample_id": sample.id, "reason": exc.detail})
            raise


def _prepare_and_print(data: bytes, rules: SampleRules) -> tuple[PreparedSample, SpeechPrints | None]:
    """The sample cleaned for a provider, and the prints of its speech, taken from the cleaned copy (what the
    provider hears) and placed in the upload's seconds (the copy starts where its leading silence ended);
    CPU-bound. A copy that carries the watermark of voicegate's speech (or any Perth-marked speech) is refused
    `SyntheticSpeech`: no clone of a clone."""
    prepared = prepare_for(data, rules)
    cleaned = decode_audio(prepared.wav)
    if (marked := watermark.detect(cleaned.samples, cleaned.sample_rate)).present:
        raise SyntheticSpeech(
            f"synthetic_speech: the sample carries the watermark of synthesized speech (score {marked.score:.2f})"
        )
    prints = speech_prints(cleaned.samples, cleaned.sample_rate)
    return prepared, None if prints is None else prints.shifted(prepared.start_s)


def _refusal(
    judged: SpeakerJudgement | None, prints: SpeechPrints | None
) -> tuple[AudioRejected, str, dict[str, Any]] | None:
    """Why a sample's speaker fails it, with the audit event's action and detail; None when it passes. Under a
    checkbox consent (``judged`` None) a sample fails when a stretch of it is not the voice of the rest."""
    if judged is None:
        stretches = () if prints is None else tuple(second_voice(prints))
        if not stretches:
            return None
        refusal = SampleSpeakersMixed(
            f"mixed_speakers: {named(stretches)} not the voice of the rest of the sample (matching it at "
            f"{min(s.score for s in stretches):.2f}; the same voice from {SELF_THRESHOLD:.2f})"
        )
        detail = {"threshold": SELF_THRESHOLD, "stretches": msgspec.to_builtins(stretches)}
        return refusal, "sample.mixed_speakers", detail
    if judged.matched:
        return None
    detail = {
        "speakerMatch": judged.score,
        "threshold": THRESHOLD,
        "windowThreshold": REFERENCE_THRESHOLD,
        "stretches": msgspec.to_builtins(judged.unlike),
    }
    return SpeakerMismatch(_mismatch(judged)), "sample.speaker_mismatch", detail


def _mismatch(judged: SpeakerJudgement) -> str:
    """Why a sample is not its consent's speaker: the seconds whose windows are not (with their score), or its
    whole score when no seconds are named or none of it is the consent's voice."""
    if not judged.unlike or (judged.wholly and judged.score < THRESHOLD):
        return f"speaker_mismatch: the speaker matches the consent's at {judged.score:.2f}, below {THRESHOLD:.2f}"
    return (
        f"speaker_mismatch: {named(judged.unlike)} not the consent's speaker (matching it at "
        f"{min(s.score for s in judged.unlike):.2f}; the same speaker from {REFERENCE_THRESHOLD:.2f}; the whole "
        f"sample at {judged.score:.2f}, from {THRESHOLD:.2f})"
    )
