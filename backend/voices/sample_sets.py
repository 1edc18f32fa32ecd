"""Voices from several samples (`/api/voices` POST, `/api/voices/{id}/samples`): a new voice enrolled from
1 to 25 of the caller's ready samples, a voice's samples changed (a re-enrolment: a new attempt, the voice
keeping its provider voice until that one is ready), and the set with its quality report: their bodies and
answers, and the rules a set is held to (`backend.voices.service.VoicesService` runs them).

Each refusal is its own 4xx, and nothing is written before every check has passed: a sample listed twice
(400 `validation_failed`), one that is not the caller's (404), one not ready (409 `sample_not_ready`),
samples checked for different providers (422 `samples_mixed_providers`), or a provider that is not
configured or cannot make a voice in the first sample's language (422).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import msgspec
import numpy as np

from backend import samples
from backend.audio.errors import SpeakerMismatch
from backend.auth.verify import UserClaims
from backend.clone import SampleSet
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.units import Database, become_service
from backend.domain.attempts import AttemptRow, SetMember
from backend.domain.limits import UserLimits
from backend.errors import MixedSpeakers, NotFound, ReadingRequired, SampleNotReady, SamplesMixed, ValidationFailed
from backend.policy.sample_set import report_of
from backend.providers.config import ProviderSettings
from backend.providers.registry import check_enrolment_language
from backend.records import sample_rows
from backend.records.sample_rows import SampleRow, VoiceSampleStatus
from backend.records.voice_rows import VoiceName
from backend.samples import consent_voiceprint
from backend.voiceprint import THRESHOLD, SpeechPrints, Voiceprint, stored_print
from backend.voiceprint.embedding import mean_print
from backend.voiceprint.windows import REFERENCE_THRESHOLD, Stretch, named, unlike, wholly_unlike
from backend.voices.types import VoiceSamples

#: The fewest partial utterances a set's other samples must hold between them to judge a sample's windows
#: against: 9 partials are 7.7 s of speech, about the shortest consent the window threshold was set with (8 s).
MIN_REFERENCE_PARTIALS: Final = 9


async def ready_samples(conn: Connection, owner_id: uuid.UUID, sample_ids: list[uuid.UUID]) -> list[SampleRow]:
    """The caller's samples, in the order given, row-locked, each ready and all for one provider. The
    caller's RLS decides which are theirs; the rest is read as the service (this connection stays so)."""
    if len(set(sample_ids)) != len(sample_ids):
        raise ValidationFailed("List each sample once in sampleIds.")
    for sample_id in sample_ids:
        if not await samples.visible(conn, sample_id):
            raise NotFound(f"Sample {sample_id} not found.")
    await become_service(conn)
    locked: dict[uuid.UUID, SampleRow] = {}
    for sample_id in sorted(sample_ids):  # one lock order, whatever order each request lists them in
        row = await sample_rows.lock_owned(conn, sample_id, owner_id)
        if row is None:
            raise NotFound(f"Sample {sample_id} not found.")  # deleted since the caller's check
        locked[sample_id] = row
    rows = [locked[sample_id] for sample_id in sample_ids]
    for row in rows:
        if row.status is VoiceSampleStatus.AWAITING_READING:
            raise ReadingRequired(
                f"Before sample {row.id} is used, its speaker reads a short phrase aloud, so that voicegate hears the"
                f" voice is theirs: POST /api/v1/voice-samples/{row.id}/reading gives the phrase to record."
            )
        if row.status is not VoiceSampleStatus.READY:
            raise SampleNotReady(f"Sample {row.id} is {row.status}; a voice is made from ready samples only.")
    if len({row.provider for row in rows}) > 1:
        raise SamplesMixed("The samples were checked for different providers; choose samples of one provider.")
    return rows


class _SpeakerJudge:
    """One speaker per voice: a set's samples must match each other and, when the request names a spoken
    consent, its speaker. A refusal is audited once the request's transaction has rolled back."""

    def __init__(self) -> None:
        self.refused: tuple[uuid.UUID, dict[str, Any]] | None = None

    async def consent(self, conn: Connection, consent_id: uuid.UUID | None) -> Voiceprint | None:
        """The named consent's voiceprint, on the caller's transaction (before it becomes the service's)."""
        return None if consent_id is None else await consent_voiceprint(conn, consent_id)

    def one_speaker(self, rows: list[SampleRow], consent: Voiceprint | None) -> None:
        """SpeakerMismatch naming the first sample whose speaker is not the consent's, as a whole or in any
        stretch of its speech (window by window: `backend.voiceprint.windows`; the seconds are named unless none
        of it is the consent's voice); MixedSpeakers naming the sample that differs from the others (the one
        least like them), or the first with a stretch of speech that is not the voice of the others. A sample
        without a voiceprint (too little speech, or checked before voiceprints were taken) matches no consent
        and is left out of the comparison of the set; one checked before its partials were kept is judged as a
        whole only."""
        stored = [(row.id, stored_print(row.voiceprint)) for row in rows]
        printed = [(sample_id, made) for sample_id, made in stored if made is not None]
        partials = {row.id: SpeechPrints.from_bytes(row.speech_prints) for row in rows if row.speech_prints}
        if consent is not None:
            known = dict(printed)
            for row in rows:
                score = known[row.id].similarity(consent) if row.id in known else 0.0
                prints = partials.get(row.id)
                stretches = [] if prints is None else unlike(prints, consent)
                if score < THRESHOLD and (prints is None or not stretches or wholly_unlike(prints, consent)):
                    self.refused = (row.id, {"speakerMatch": round(score, 4), "threshold": THRESHOLD})
                    raise SpeakerMismatch(
                        f"Sample {row.id} is not the consent's speaker: it matches at {score:.2f}, "
                        f"below {THRESHOLD:.2f}."
                    )
                if stretches:
                    self.refused = (row.id, _window_detail(stretches, score))
                    raise SpeakerMismatch(
                        f"Sample {row.id}: {named(stretches)} not the consent's speaker (matching it at "
                        f"{min(s.score for s in stretches):.2f}; the same speaker from {REFERENCE_THRESHOLD:.2f})."
                    )
        odd = odd_one_out(printed)
        if odd is not None:
            sample_id, unlike_id, score = odd
            self.refused = (
                sample_id,
                {"unlike": str(unlike_id), "speakerMatch": round(score, 4), "threshold": THRESHOLD},
            )
            raise MixedSpeakers(
                f"Sample {sample_id} is not the same speaker as sample {unlike_id}: they match at {score:.2f}, "
                f"below {THRESHOLD:.2f}."
            )
        spliced = spliced_in(partials)
        if spliced is not None:
            sample_id, stretches = spliced
            self.refused = (sample_id, _window_detail(stretches, None))
            raise MixedSpeakers(
                f"Sample {sample_id}: {named(stretches)} not the voice of the other samples (matching them at "
                f"{min(s.score for s in stretches):.2f}; the same speaker from {REFERENCE_THRESHOLD:.2f})."
            )


def spliced_in(partials: dict[uuid.UUID, SpeechPrints]) -> tuple[uuid.UUID, list[Stretch]] | None:
    """The first sample with stretches of speech whose windows are not the voice of the set's other samples
    (the print of all their partials, when they hold `MIN_REFERENCE_PARTIALS`), and those stretches; None when
    every sample's windows are that voice."""
    for sample_id, prints in partials.items():
        others = [other.vectors for other_id, other in partials.items() if other_id != sample_id]
        if sum(len(vectors) for vectors in others) < MIN_REFERENCE_PARTIALS:
            continue
        reference = mean_print(np.concatenate(others))
        stretches = [] if reference is None else unlike(prints, reference)
        if stretches:
            return sample_id, stretches
    return None


def _window_detail(stretches: list[Stretch], score: float | None) -> dict[str, Any]:
    """A window refusal's audit detail: the stretches, the window threshold, and the whole score when known."""
    detail = {"stretches": msgspec.to_builtins(stretches), "windowThreshold": REFERENCE_THRESHOLD}
    return detail if score is None else detail | {"speakerMatch": round(score, 4)}


def odd_one_out(printed: list[tuple[uuid.UUID, Voiceprint]]) -> tuple[uuid.UUID, uuid.UUID, float] | None:
    """When the least alike pair of samples is not one speaker (a cosine under THRESHOLD): of that pair, the
    sample less like all the others, the other one, and their cosine; None when every pair is one speaker. Of
    a set of two, the second is named."""
    count = len(printed)
    scores = [[a.similarity(b) for _, b in printed] for _, a in printed]
    pairs = [(scores[i][j], i, j) for i in range(count) for j in range(i + 1, count)]
    if not pairs:
        return None
    score, first, second = min(pairs)
    if score >= THRESHOLD:
        return None

    def alike(index: int) -> float:
        return (sum(scores[index]) - scores[index][index]) / (count - 1)

    odd, other = (first, second) if alike(first) < alike(second) else (second, first)
    return printed[odd][0], printed[other][0], score


@asynccontextmanager
async def speakers_judged(db: Database, claims: UserClaims) -> AsyncIterator[_SpeakerJudge]:
    """A judge for the block; a refusal it raised is audited (`voice.speaker_refused`) as the block ends."""
    judge = _SpeakerJudge()
    try:
        yield judge
    except (SpeakerMismatch, MixedSpeakers) as refused:
        if judge.refused is not None:
            sample_id, detail = judge.refused
            async with db.service_transaction() as conn:
                await record_audit(
                    conn,
                    claims.sub,
                    "voice.speaker_refused",
                    "voice_sample",
                    sample_id,
                    detail={"code": refused.code, **detail},
                )
        raise


def enrolment_of(
    rows: list[SampleRow],
    providers: ProviderSettings,
    *,
    name: VoiceName,
    voice_id: uuid.UUID | None,
    limits: UserLimits,
    consent_id: uuid.UUID | None = None,
) -> SampleSet:
    """What a voice is enrolled from: the set's samples, for the provider they were checked for (configured and
    making voices in the first sample's language, 422 otherwise), under the consent named or the first's; a new
    voice counted against the caller's `limits`."""
    provider = providers.usable(rows[0].provider)
    # The language the attempt enrols the voice in (see `clone.step.AttemptRun.enrol`).
    check_enrolment_language(provider, rows[0].language)
    return SampleSet(
        sample_ids=tuple(row.id for row in rows),
        consent_id=consent_id or rows[0].consent_id,
        provider=provider,
        language=rows[0].language,
        name=name,
        limits=limits,
        voice_id=voice_id,
    )


def accepted_set(attempt: AttemptRow, rows: list[SampleRow]) -> VoiceSamples:
    """The 202: the set with the report of what is known before the enrolment measures pitch and timbre."""
    members = [
        SetMember(
            sample_id=row.id,
            position=position,
            speech_s=(row.quality_report or {}).get("speechDurationS"),
            loudness_lufs=(row.quality_report or {}).get("loudnessLufs"),
            median_pitch_hz=None,
            spectrum_db=None,
        )
        for position, row in enumerate(rows)
    ]
    return VoiceSamples(
        voice_id=attempt.voice_id,
        attempt_id=attempt.id,
        attempt_status=attempt.status,
        sample_ids=[row.id for row in rows],
        quality=report_of(members),
    )
