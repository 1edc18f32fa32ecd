"""What the `/api/v1/consents` routes take and answer: a spoken consent asked for, its phrase, a recording's verdict,
a consent as its owner sees it, and the wording a checkbox agrees to. The use cases are
`backend.consents.service.ConsentsService`'s."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

from backend.fields import LanguageTag, Name
from backend.policy.consent import State

Verdict = Literal["verified", "held", "rejected"]
Refusal = Literal["phrase_mismatch", "too_noisy", "not_speech", "too_short", "synthetic_speech", "ownership_refused"]


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
    """What the recording was found to say: `verified`; `held` for review (its voice is checked by an operator
    before it covers any sample: docs/ownership.md); or `rejected` with the reason."""

    consent_id: uuid.UUID
    status: Verdict
    word_accuracy: float
    speech_seconds: float
    reason: Refusal | None = None


class ConsentView(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """A consent as its owner sees it (never its code apart from the phrase, nor its voiceprint)."""

    consent_id: uuid.UUID
    kind: Literal["checkbox", "spoken"]
    #: Its state (`backend.policy.consent`): `expired` once its phrase's time passed unverified, `purged` once
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


class ConsentText(msgspec.Struct, frozen=True, rename="camel"):
    """A consent wording, the version uploads record when it is agreed to, and the wording of the
    optional consent to keep the sample (`keepSample`) in that version."""

    version: str
    text: str
    keep_sample_text: str | None = None
