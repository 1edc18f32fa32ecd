"""`public.synthesis_jobs`: the row, its status, the read of one whole row, and the queued jobs following a voice's
new attempt."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from pathlib import Path

import msgspec

from backend.db.connection import Connection
from backend.db.queries import load_queries
from backend.records.rows import fetch_optional_record

_Q = load_queries(Path(__file__).with_suffix(".sql"))


class SynthesisJobStatus(enum.StrEnum):
    """`synthesis_jobs.status`, exactly its CHECK constraint's values."""

    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Its owner stopped it while it was queued or running.
    CANCELED = "canceled"


#: A job in one of these has ended: nothing speaks it again.
ENDED: frozenset[SynthesisJobStatus] = frozenset(
    {SynthesisJobStatus.SUCCEEDED, SynthesisJobStatus.FAILED, SynthesisJobStatus.CANCELED}
)


class SynthesisJobRow(msgspec.Struct, frozen=True, kw_only=True):
    """A whole `synthesis_jobs` row."""

    id: uuid.UUID
    owner_id: uuid.UUID
    voice_id: uuid.UUID
    sample_id: uuid.UUID | None
    input_text: str
    status: SynthesisJobStatus
    output_bucket_id: str | None
    output_object_path: str | None
    duration_ms: int | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    #: The clone attempt the job waits for; None when its voice was ready when the job was made.
    attempt_id: uuid.UUID | None
    retry_count: int
    progress_done: int | None
    progress_total: int | None
    healed_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None


async def job_row(conn: Connection, job_id: uuid.UUID) -> SynthesisJobRow | None:
    """The job's row as `conn` sees it (a user, under RLS, only their own), None if there is none."""
    return await fetch_optional_record(conn, _Q["job_row"], {"id": job_id}, SynthesisJobRow)


async def follow_attempt(conn: Connection, voice_id: uuid.UUID, attempt_id: uuid.UUID) -> None:
    """Make every job still queued for `voice_id` wait for `attempt_id` (the attempt's end wakes them), in the
    transaction that made the attempt: whoever gives a voice a new provider voice (a clone re-enrolling it, a
    job healing, a migration) has the voice's queued jobs speak with that one."""
    await conn.execute(_Q["follow_attempt"], {"voice_id": voice_id, "attempt_id": attempt_id})
