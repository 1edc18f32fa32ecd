"""The pgmq queues (DESIGN.md §4): their names, the messages they carry, and sending one.

This is the one place a queue is named in Python, and the one that runs pgmq's SQL: `send`, and the reads,
archives, visibility and recorded errors of `queue_consumers.runtime`. Each runs on the caller's connection,
so a domain write and the message it implies commit together or not at all. The migrations create the queues,
and triggers send the messages whose cause is a row change (a new attempt, a job woken by its attempt).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection, sql

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one, fetch_optional
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


async def read(conn: Connection, queue: str, vt: int, qty: int) -> list[dict[str, Any]]:
    """`pgmq.read`: up to `qty` messages, each invisible for `vt` seconds (`msg_id`, `read_ct`, `enqueued_at`,
    `vt`, `message`)."""
    return await fetch_all(conn, _Q["read"], {"queue": queue, "vt": vt, "qty": qty})


async def set_vt(conn: Connection, queue: str, msg_id: int, vt: int) -> None:
    """Make the message invisible for `vt` seconds from now."""
    await conn.execute(_Q["set_vt"], {"queue": queue, "msg_id": msg_id, "vt": vt})


async def archive(conn: Connection, queue: str, msg_id: int) -> None:
    """Move the message to the queue's archive."""
    await conn.execute(_Q["archive"], {"queue": queue, "msg_id": msg_id})


async def archive_many(conn: Connection, queue: str, msg_ids: list[int]) -> None:
    """Move the messages to the queue's archive."""
    await conn.execute(_Q["archive_many"], {"queue": queue, "msg_ids": msg_ids})


async def hand_back(conn: Connection, queue: str, deliveries: dict[int, int], *, answer: bool) -> set[int]:
    """Make each message of `deliveries` (`msg_id` → the `read_ct` it was read with) visible at once if
    nobody has read it since and it is still invisible; the messages made visible when `answer` (else none:
    a pipeline need not wait for it)."""
    params = {"queue": queue, "msg_ids": list(deliveries), "read_cts": list(deliveries.values())}
    if not answer:
        await conn.execute(_Q["release"], params)
        return set()
    return {row["msg_id"] for row in await fetch_all(conn, _Q["release_listed"], params)}


async def record_error(conn: Connection, queue: str, msg_id: int, read_ct: int, error: str) -> None:
    """Keep the error of the message's failed delivery `read_ct` (the last one kept), for its dead letter."""
    await conn.execute(_Q["record_error"], {"queue": queue, "msg_id": msg_id, "read_ct": read_ct, "error": error})


async def take_error(conn: Connection, queue: str, msg_id: int) -> str | None:
    """The message's kept error, forgotten as it is taken."""
    row = await fetch_optional(conn, _Q["take_error"], {"queue": queue, "msg_id": msg_id})
    return None if row is None else str(row["error"])


async def dead_letter_count(conn: Connection) -> int:
    """How many messages wait in the dead-letter queue."""
    return int((await fetch_one(conn, _Q["dead_letter_count"], {}))["n"])


@dataclass(frozen=True)
class QueueMetrics:
    """One queue's figures as pgmq keeps them: messages waiting, the ages of the oldest and newest (None when
    empty), and how many were ever sent."""

    queue: str
    depth: int
    oldest_age_s: int | None
    newest_age_s: int | None
    total_sent: int


async def metrics(conn: Connection) -> list[QueueMetrics]:
    """Every queue's figures, by name."""
    return [
        QueueMetrics(
            queue=row["queue_name"],
            depth=row["queue_length"],
            oldest_age_s=row["oldest_msg_age_sec"],
            newest_age_s=row["newest_msg_age_sec"],
            total_sent=row["total_messages"],
        )
        for row in await fetch_all(conn, _Q["metrics"], {})
    ]


@dataclass(frozen=True)
class DeadLetter:
    """A message in the dead-letter queue, as stored: its id, how often it was read there, when it arrived,
    and its body (`{sourceQueue, sourceMsgId, readCount, message, error, deadAt}`, unchecked)."""

    msg_id: int
    read_ct: int
    enqueued_at: datetime
    message: object


async def dead_letters(conn: Connection, *, after: int | None, limit: int) -> list[DeadLetter]:
    """Up to `limit` dead letters after `after` (from the first when None), by id, read without a delivery:
    each stays visible and its read count does not move."""
    rows = await fetch_all(conn, _Q["dead_letters"], {"after": after, "limit": limit})
    return [DeadLetter(row["msg_id"], row["read_ct"], row["enqueued_at"], row["message"]) for row in rows]


async def lock_dead_letter(conn: Connection, msg_id: int) -> object | None:
    """Lock the dead letter `msg_id` for the caller's transaction and answer its body; None when it is gone or
    another transaction holds it."""
    row = await fetch_optional(conn, _Q["lock_dead_letter"], {"msg_id": msg_id})
    return None if row is None else row["message"]


async def listen(conn: AsyncConnection[Any], queue: str) -> None:
    """LISTEN on `conn` for the queue's inserts: pgmq notifies `pgmq.q_<queue>.INSERT` on each committed one."""
    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(f"pgmq.q_{queue}.INSERT")))
