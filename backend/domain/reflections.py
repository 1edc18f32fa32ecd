"""What the launch gate weighs of a reflection: a plain type, which the records read (`backend.records.reflection_rows`)
and the policy weighs (`backend.policy.launch`) without a database."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec


class LaunchRow(msgspec.Struct, frozen=True, kw_only=True):
    """What the launch gate weighs: the readiness, and the active attempt with the provider voice its voice row
    carries (the ids None when the reflection has no active attempt, or its voice is gone)."""

    ready: bool
    reasons: list[str]
    attempt_id: uuid.UUID | None
    voice_id: uuid.UUID | None
    provider: str | None
    provider_voice_id: str | None
    target_model: str | None
    provider_metadata: dict[str, Any] | None
    language: str | None
