"""The pgmq queues (DESIGN.md §4): their names, the messages they carry, and sending one.

This is the one place a queue is named in Python. `send` runs on the caller's connection, so a domain
write and the message it implies commit together or not at all. The migrations create the queues,
and triggers send the messages whose cause is a row change (a new attempt, a job woken by its attempt).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Final

from backend.db.connection import Connection
from backend.db.execute import fetch_one
from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))

CLONE: Final = "voice_clone_process"
"""`VOICE_CLONE_PROCESS {attemptId, reflectionId, version}`: drive a clone attempt (sent by SQL on insert)."""
PREVIEW: Final = "voice_preview"
"""`VOICE_PREVIEW {attemptId, version}`: speak the preview of a ready, synced attempt."""
SAMPLE_CHECK: Final = "voice_sample_process"
"""`{sampleId}`: check and clean an uploaded sample."""
SYNTHESIS: Final = "voice_synthesis"
"""`{jobId}`: speak a synthesis job's text."""
WEBHOOK: Final = "webhook_delivery"
"""`{webhookId, endpointId, type, timestamp, data}`: deliver one event to one endpoint (sent by SQL triggers;
`endpointId` null is the project's endpoint). `webhookId` stays the same through retries and replays."""
DEAD_LETTER: Final = "voice_dead_letter"
"""Messages delivered too often: `{sourceQueue, sourceMsgId, readCount, message, error, deadAt}`."""

#: The queues work is consumed from (every queue but the dead letters).
WORK_QUEUES: Final = (CLONE, PREVIEW, SAMPLE_CHECK, SYNTHESIS, WEBHOOK)
ALL: Final = (*WORK_QUEUES, DEAD_LETTER)


def preview_message(attempt_id: uuid.UUID, version: int) -> dict[str, Any]:
    """The `VOICE_PREVIEW` message asking for an attempt's preview."""
    return {"type": "VOICE_PREVIEW", "attemptId": str(attempt_id), "version": version}


def sample_check_message(sample_id: uuid.UUID) -> dict[str, Any]:
    """The message asking for a sample's check."""
    return {"sampleId": str(sample_id)}


def synthesis_message(job_id: uuid.UUID) -> dict[str, Any]:
    """The message asking for a synthesis job."""
    return {"jobId": str(job_id)}


async def send(conn: Connection, queue: str, message: dict[str, Any], delay_seconds: int = 0) -> int:
    """`pgmq.send` on the caller's transaction, so the message exists exactly when the write commits."""
    row = await fetch_one(
        conn, _Q["send"], {"queue": queue, "message": json.dumps(message, default=str), "delay": delay_seconds}
    )
    msg_id: int = row["msg_id"]
    return msg_id
