"""What the settings bound, as plain types: what one user may spend and create, and how long rows are kept. The
settings build them from the environment; the ledger, the creates' counter and the retention sweep hold to them."""

from __future__ import annotations

import msgspec


class SpendQuota(msgspec.Struct, frozen=True, kw_only=True):
    """What one user may spend, as the settings say (`Settings.spend_quota`)."""

    #: VOICEGATE_USER_CHARACTERS: characters sent to providers per window.
    characters: int = 200_000
    #: VOICEGATE_USER_USAGE_WINDOW: the window's length in seconds.
    window_seconds: int = 86_400
    #: VOICEGATE_USER_QUEUED_JOBS: synthesis jobs queued or running at once.
    queued_jobs: int = 20


class UserLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What one user may create, as the settings say (`Settings.user_limits`)."""

    #: VOICEGATE_USER_CREATES: creates of each kind at once, and how many come back per window.
    creates: int
    #: VOICEGATE_USER_CREATE_WINDOW: the seconds in which `creates` come back.
    window_seconds: float
    #: VOICEGATE_USER_OPEN_CONSENTS: spoken consents awaiting their recording at once.
    open_consents: int
    #: VOICEGATE_USER_DRAFT_VOICES: draft voices (made by `POST /api/clone/upload-url`, not finalized) at once.
    draft_voices: int


class Retention(msgspec.Struct, frozen=True):
    """How long each kind of row is kept, in days (0: for ever), and the rows one batch removes at most."""

    queue_archive_days: float
    audit_days: float
    attempt_history_days: float
    speech_days: float
    job_days: float
    usage_days: float
    batch: int
