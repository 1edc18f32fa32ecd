"""The consent rules every sample route asks: what a request must name before anything is read
(`require_consent`), where a consent was given from (`Origin`), and whether a sample's speaker is its spoken
consent's, judged on their voiceprints, window by window (`judge_speaker`). The samples area reads and records the
consent (`backend.samples.upload.consent_for_sample`); spoken consents themselves are `backend.consents`.

A consent's states, and which of them take a recording or cover a sample, are its one state machine.

The database reads the state (`public.voice_consent_state`, migration 20261126190500_consent_state) the same way
for every query, and guards every write with it; this module says what each state allows:

    (a ticked box)            -> accepted
    (POST /api/v1/consents)   -> awaiting_recording
    awaiting_recording, rejected --a recording that says the phrase-->       verified
    awaiting_recording, rejected --a recording that does not-->              rejected
    awaiting_recording, rejected --the phrase's time passes-->               expired   (read from the clock)
    awaiting_recording, rejected --a recording of another account's voice--> held      (docs/ownership.md)
    held                         --an operator releases it-->                verified
    held                         --an operator refuses it-->                 rejected  (ownership_refused)
    verified                     --the evidence's retention ends (sweep)-->  purged

Refused: a recording of an expired consent (422 `consent_expired`, before its audio is read), and of an accepted,
verified or purged one (409: it takes no recording); a sample under any consent but a verified one (422
`consent_expired` for an expired or purged one, `consent_not_verified` for the others). A recording judged
while its phrase's time ran out is refused as expired too: its verdict is written under the state it finds.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Final, Literal

import msgspec

from backend.errors import Conflict, ConsentExpired, ConsentNotVerified, ConsentRecordingRequired, ConsentRequired
from backend.voiceprint import THRESHOLD, SpeechPrints, Voiceprint
from backend.voiceprint.windows import Stretch, unlike, wholly_unlike

#: The consent wording a client showed beside the checkbox; bump when the text changes so records say which
#: one was agreed to (`backend.consents.wording` keeps every version's words).
CONSENT_TEXT_VERSION: Final = "2026-12"

Policy = Literal["checkbox", "spoken"]
State = Literal["accepted", "awaiting_recording", "rejected", "expired", "verified", "held", "purged"]

#: The states a recording of the phrase is taken in, and so the states `verified` and `rejected` are entered from.
RECORDABLE: Final[frozenset[State]] = frozenset({"awaiting_recording", "rejected"})


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
    `backend.samples.upload.consent_for_sample`."""
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


def judge_speaker(
    consent: Voiceprint | None, sample: SpeechPrints | None, judged_before: float | None = None
) -> SpeakerJudgement:
    """How well a sample's speaker matches the speaker of its spoken consent (`consent`, its voiceprint): the
    sample's voiceprint, and its speech window by window, so that another voice spliced into it is refused however
    much of the consent's voice is around it. A sample without speech enough for a voiceprint matches nobody. Once
    the consent's evidence is purged (`consent` None), a sample judged before (`judged_before`, its score then: a
    kept sample cleaned again for another provider) keeps that judgement, and any other matches nobody."""
    if consent is None:
        score = 0.0 if judged_before is None else judged_before
        return SpeakerJudgement(score=score, matched=score >= THRESHOLD)
    made = None if sample is None else sample.voiceprint()
    if sample is None or made is None:
        return SpeakerJudgement(score=0.0, matched=False)
    score = made.similarity(consent)
    stretches = tuple(unlike(sample, consent))
    return SpeakerJudgement(
        score=round(score, 4),
        matched=score >= THRESHOLD and not stretches,
        unlike=stretches,
        wholly=wholly_unlike(sample, consent),
    )


def check_recordable(state: State) -> None:
    """Refuse a recording of a consent in `state` unless it is `RECORDABLE`: ConsentExpired for an expired one,
    Conflict for one that takes no recording (a checkbox consent, or a verified one, purged or not)."""
    if state in RECORDABLE:
        return
    if state == "expired":
        raise ConsentExpired("The consent's phrase has expired: get a new phrase (POST /api/v1/consents) and read it.")
    if state == "held":
        raise Conflict("This consent takes no recording: it is held for review.")
    raise Conflict("This consent takes no recording: it is a checkbox consent, or its recording is verified.")


def check_covers_sample(state: State) -> None:
    """Refuse a sample named under a consent in `state` unless it is verified: ConsentExpired for an expired or
    purged one, ConsentNotVerified for one not verified yet, or a checkbox one (given with each upload instead)."""
    if state == "verified":
        return
    if state in {"expired", "purged"}:
        raise ConsentExpired
    if state == "accepted":
        raise ConsentNotVerified("A checkbox consent is given with each upload (consent=true), not named by its id.")
    if state == "held":
        raise ConsentNotVerified("The consent is held for review.")
    raise ConsentNotVerified
