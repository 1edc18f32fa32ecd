"""A clone attempt as its row holds it, and what its states are: plain types, which the records read and write
(`backend.records.attempts`) and the policy weighs (`backend.policy`) without a database."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, Final

import msgspec


class AttemptStatus(enum.StrEnum):
    """Where an attempt stands (`voice_clone_attempts.status`; the moves are `voicegate.attempt_moves`)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    VERIFYING = "verifying"
    READY = "ready"
    FAILED = "failed"
    CANCELED = "canceled"
    SUPERSEDED = "superseded"


class AttemptSource(enum.StrEnum):
    """Where an attempt's provider voice comes from (`voice_clone_attempts.source`; see `create`)."""

    SAMPLE_UPLOAD = "sample_upload"
    CUSTOM_VOICE_ID = "custom_voice_id"
    LEGACY_OUTBOX = "legacy_outbox"
    CONVERSATION_AUDIO = "conversation_audio"
    PROVIDER_MIGRATION = "provider_migration"
    PROVIDER_CHURN = "provider_churn"


class RuntimeStatus(enum.StrEnum):
    """Whether the voice row the runtime reads carries a ready attempt's provider voice."""

    PENDING = "pending"
    SYNCING = "syncing"
    SYNCED = "synced"
    SYNC_FAILED = "sync_failed"


class PreviewStatus(enum.StrEnum):
    """Where a ready attempt's preview stands; `completed` once its owner heard it (the launch gate opens)."""

    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    GENERATING = "generating"
    READY = "ready"
    COMPLETED = "completed"


class MirrorCloneStatus(enum.StrEnum):
    """`cloneStatus` of a reflection's voice: its active attempt's `AttemptStatus`, or `none` before it has one."""

    NONE = "none"
    QUEUED = "queued"
    PROCESSING = "processing"
    VERIFYING = "verifying"
    READY = "ready"
    FAILED = "failed"
    CANCELED = "canceled"
    SUPERSEDED = "superseded"


class MirrorRuntimeStatus(enum.StrEnum):
    """`runtimeStatus` of a reflection's voice: its active attempt's `RuntimeStatus`, or `none` before it has one."""

    NONE = "none"
    PENDING = "pending"
    SYNCING = "syncing"
    SYNCED = "synced"
    SYNC_FAILED = "sync_failed"


class AttemptError(msgspec.Struct):
    """Why an attempt failed: a stable `code` to branch on and a `message` safe to show."""

    code: str
    message: str | None


class VoiceMirror(msgspec.Struct, rename="camel"):
    """`reflections.voice`, the mirror of the reflection's active attempt that clients read: written only by
    `voicegate.attempt_mirror` (and the column's default before the first attempt, every id null)."""

    clone_status: MirrorCloneStatus
    runtime_status: MirrorRuntimeStatus
    preview_required: bool
    preview_status: PreviewStatus
    provider: str | None
    voice_id: uuid.UUID | None
    provider_voice_id: str | None
    target_model: str | None
    attempt_id: uuid.UUID | None
    last_error: AttemptError | None
    updated_at: datetime | None
    version: int
    #: The active attempt's likeness (backend.clone.likeness): null until judged (or in a mirror written
    #: before likeness existed), and beside it the threshold it was judged against, what was judged, and why
    #: there is no score when there is none; and what a voice that is not the speaker's (the bundled `local` voice
    #: as it ships) scored against the same samples.
    likeness: float | None = None
    likeness_threshold: float | None = None
    likeness_source: str | None = None
    likeness_error: str | None = None
    likeness_baseline: float | None = None


#: Where an attempt is still under way (a worker may be enrolling or verifying it).
OPEN_STATUSES: Final = frozenset({AttemptStatus.QUEUED, AttemptStatus.PROCESSING, AttemptStatus.VERIFYING})
#: Attempts a user may retry.
RETRYABLE: Final = frozenset({AttemptStatus.FAILED, AttemptStatus.CANCELED})


class AttemptRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of `voice_clone_attempts` (every column the service and the workers use)."""

    id: uuid.UUID
    voice_id: uuid.UUID
    reflection_id: uuid.UUID | None
    sample_id: uuid.UUID | None
    owner_id: uuid.UUID
    provider: str
    source: AttemptSource
    status: AttemptStatus
    runtime_status: RuntimeStatus
    preview_required: bool
    preview_status: PreviewStatus
    retry_count: int
    max_retries: int
    next_retry_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    enrolment_key: str
    provider_voice_id: str | None
    provider_target_model: str | None
    provider_request_id: str | None
    provider_metadata: dict[str, Any]
    last_error_code: str | None
    last_error_message: str | None
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    #: The voice's likeness to its samples, once judged (`backend.clone.likeness`); the samples' print itself
    #: (`sample_voiceprint`) is read only where it is used.
    likeness: float | None = None
    likeness_threshold: float | None = None
    likeness_source: str | None = None
    likeness_error: str | None = None
    likeness_baseline: float | None = None

    def leased_to(self, owner: str, now: datetime) -> bool:
        """True when `owner` holds an unexpired lease."""
        return self.lease_owner == owner and self.lease_expires_at is not None and self.lease_expires_at > now

    @property
    def last_error(self) -> AttemptError | None:
        """The last error as clients see it: a stable code and a message safe to show."""
        if self.last_error_code is None:
            return None
        return AttemptError(self.last_error_code, self.last_error_message)


class Attempt(msgspec.Struct, rename="camel"):
    """One clone attempt as clients see it, without operator-only fields (lease, enrolment key)."""

    id: uuid.UUID
    reflection_id: uuid.UUID | None
    voice_id: uuid.UUID
    provider: str
    source: str
    status: AttemptStatus
    runtime_status: RuntimeStatus
    preview_required: bool
    preview_status: PreviewStatus
    retry_count: int
    max_retries: int
    next_retry_at: datetime | None
    provider_voice_id: str | None
    provider_target_model: str | None
    last_error: AttemptError | None
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    #: How much the voice sounds like its samples (the cosine of their voiceprints, 0-1), null until judged;
    #: it would pass as its speaker from `likenessThreshold`. `likenessBaseline`: what the bundled `local` voice as
    #: it ships scored against the same samples (null for a voice that is not English).
    likeness: float | None = None
    likeness_threshold: float | None = None
    likeness_source: str | None = None
    likeness_error: str | None = None
    likeness_baseline: float | None = None


def view(attempt: AttemptRow) -> Attempt:
    """The client-facing shape of an attempt."""
    return msgspec.convert(attempt, Attempt, from_attributes=True)


def as_row(row: dict[str, Any]) -> AttemptRow:
    """A `voice_clone_attempts` row as a query returns it (or `read_and_lease` leased it), typed."""
    return msgspec.convert(row, AttemptRow, from_attributes=False, strict=False)


class SetMember(msgspec.Struct, frozen=True, kw_only=True):
    """One sample of an attempt's set, with what its enrolment measured on it (None before)."""

    sample_id: uuid.UUID
    position: int
    speech_s: float | None
    loudness_lufs: float | None
    median_pitch_hz: float | None
    spectrum_db: list[float] | None
