"""`public.voice_samples`: the row, its status, and the reads of whole rows other areas make."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_one
from backend.db.queries import load_queries
from backend.records.rows import fetch_optional_record

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class VoiceSampleStatus(enum.StrEnum):
    """`voice_samples.status`, exactly its CHECK constraint's values."""

    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    #: Its voice matched another account's print: kept for an operator's review (docs/ownership.md).
    HELD = "held"
    #: Its voice matched another account's print: waiting for its uploader's reading of a phrase (docs/ownership.md).
    AWAITING_READING = "awaiting_reading"


class SampleRow(msgspec.Struct, frozen=True, kw_only=True):
    """A whole `voice_samples` row."""

    id: uuid.UUID
    owner_id: uuid.UUID
    voice_id: uuid.UUID | None
    consent_id: uuid.UUID
    bucket_id: str
    object_path: str
    declared_type: str | None
    sniffed_type: str | None
    size_bytes: int | None
    duration_ms: int | None
    sample_rate: int | None
    channels: int | None
    #: The stored QualityReport, camel-cased as it was encoded.
    quality_report: dict[str, Any] | None
    processed_object_path: str | None
    status: VoiceSampleStatus
    failure_reason: str | None
    transcript: str | None
    language: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    provider: str | None
    original_removed_at: datetime | None
    processed_provider: str | None
    #: What its owner calls it; None until named.
    name: str | None
    #: Its speaker's voiceprint (`backend.voiceprint`, 1,024 bytes), taken as it was checked.
    voiceprint: bytes | None
    #: How like the speaker of its spoken consent it is (the voiceprints' cosine); None under a checkbox.
    speaker_match: float | None
    #: Its partial utterances' embeddings, with the seconds of the sample each stands for
    #: (`backend.voiceprint.SpeechPrints`), taken as it was checked; None for a sample checked before they were.
    speech_prints: bytes | None


async def sample_row(conn: Connection, sample_id: uuid.UUID) -> SampleRow | None:
    """The sample's row as `conn` sees it, None if there is none."""
    return await fetch_optional_record(conn, _Q["sample_row"], {"sample_id": sample_id}, SampleRow)


async def lock_owned(conn: Connection, sample_id: uuid.UUID, owner_id: uuid.UUID) -> SampleRow | None:
    """The owner's sample, row-locked as the service; None if there is none."""
    return await fetch_optional_record(conn, _Q["lock_owned"], {"id": sample_id, "owner_id": owner_id}, SampleRow)


async def count_expired(conn: Connection) -> int:
    """How many samples are past their expiry (waiting for the purge)."""
    row = await fetch_one(conn, _Q["count_expired"], {})
    return int(row["n"])
