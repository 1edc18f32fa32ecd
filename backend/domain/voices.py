"""A voice as its row holds it: plain types, which the records read and write (`backend.records.voice_rows`) and the
policy weighs (`backend.policy`) without a database."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import msgspec


class VoiceStatus(enum.StrEnum):
    """`voices.status`, exactly its CHECK constraint's values."""

    DRAFT = "draft"
    CLONING = "cloning"
    READY = "ready"
    FAILED = "failed"


class VoiceFields(msgspec.Struct, frozen=True):
    """What a voice is, as its row holds it and the `/api/voices` routes show it (`VoiceRow`,
    `backend.voices.service.Voice`). Its provider fields are published by the clone attempt lifecycle in SQL."""

    id: uuid.UUID
    name: str
    language: str | None
    status: VoiceStatus
    tts_provider: str | None
    provider_voice_id: str | None
    provider_target_model: str | None
    provider_voice_kind: str | None
    provider_region: str | None
    provider_request_id: str | None


class VoiceRow(VoiceFields, frozen=True, kw_only=True):
    """A whole `voices` row."""

    owner_id: uuid.UUID
    provider_metadata: dict[str, Any]
    consent_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
