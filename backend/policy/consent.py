"""The consent every sample is stored under, decided in one place for every sample route: a verified spoken consent
named by `consentId` (checked as the caller, under RLS), or, unless `VOICEGATE_CONSENT=spoken`, a checkbox consent
recorded with the upload (`consent_for_sample`); and whether a sample's speaker is its spoken consent's, judged
on their voiceprints, window by window (`judge_sample`). Spoken consents themselves are `backend.consents`."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Final, Literal

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import as_service
from backend.errors import ConsentRecordingRequired, ConsentRequired, NotFound
from backend.policy.consent_states import check_covers_sample
from backend.voiceprint import THRESHOLD, SpeechPrints, Voiceprint
from backend.voiceprint.windows import Stretch, unlike, wholly_unlike

_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: The consent wording a client showed beside the checkbox; bump when the text changes so records say which
#: one was agreed to (`backend.consents.wording` keeps every version's words).
CONSENT_TEXT_VERSION: Final = "2026-12"

Policy = Literal["checkbox", "spoken"]


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
