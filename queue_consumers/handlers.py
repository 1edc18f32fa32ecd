"""One handler per queue, in the two modes of DESIGN.md §4: call the lifecycle in-process, or call
the API's internal route (`CONSUMER_MODE=http`), which runs the very same function."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import msgspec

from backend.db.pool import Connection
from backend.lifecycle.context import Lifecycle, Outcome
from backend.lifecycle.preview import process_preview
from backend.lifecycle.processing import fail_dead_lettered, process_attempt
from backend.lifecycle.samples import fail_sample, process_sample
from backend.lifecycle.synthesis import fail_dead_lettered_job, process_synthesis
from backend.routes.internal import NO_REFLECTION
from queue_consumers.runtime import Handler, Message


def _attempt_id(message: Message) -> uuid.UUID:
    return uuid.UUID(str(message.message["attemptId"]))


def clone_handler(ctx: Lifecycle, worker_id: str) -> Handler:
    """`VOICE_CLONE_PROCESS` in-process."""

    async def handle(message: Message) -> datetime | None:
        return (await process_attempt(ctx, _attempt_id(message), worker_id)).retry_at

    return handle


def clone_handler_http(client: httpx.AsyncClient, service_key: str, worker_id: str) -> Handler:
    """`VOICE_CLONE_PROCESS` through `POST /internal/reflections/{id}/voice-clone-attempts/{attemptId}/process`.

    `client` carries the API base URL; a non-2xx answer is a failed delivery (retried, then dead-lettered).
    """

    async def handle(message: Message) -> datetime | None:
        reflection = message.message.get("reflectionId") or NO_REFLECTION
        response = await client.post(
            f"/internal/reflections/{reflection}/voice-clone-attempts/{_attempt_id(message)}/process",
            headers={"Authorization": f"Bearer {service_key}", "X-Voicegate-Worker": worker_id},
        )
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=Outcome).retry_at

    return handle


def preview_handler(ctx: Lifecycle) -> Handler:
    """`VOICE_PREVIEW`: the preview runs where the worker runs (it only needs Storage and the provider)."""

    async def handle(message: Message) -> datetime | None:
        return (await process_preview(ctx, _attempt_id(message))).retry_at

    return handle


def sample_handler(ctx: Lifecycle) -> Handler:
    """`VOICE_SAMPLE_PROCESS`: check an uploaded sample and store its cleaned copy."""

    async def handle(message: Message) -> datetime | None:
        return (await process_sample(ctx, uuid.UUID(str(message.message["sampleId"])))).retry_at

    return handle


def synthesis_handler(ctx: Lifecycle) -> Handler:
    """`VOICE_SYNTHESIS`: speak a job's text (or put it back while its voice is being cloned)."""

    async def handle(message: Message) -> datetime | None:
        return (await process_synthesis(ctx, uuid.UUID(str(message.message["jobId"])))).retry_at

    return handle


async def fail_sample_check(conn: Connection, message: Message, reason: str) -> None:
    """Dead-letter hook of the sample queue: the sample fails with the reason."""
    await fail_sample(conn, uuid.UUID(str(message.message["sampleId"])), reason)


async def fail_synthesis_job(conn: Connection, message: Message, reason: str) -> None:
    """Dead-letter hook of the synthesis queue: the job fails with the reason."""
    await fail_dead_lettered_job(conn, uuid.UUID(str(message.message["jobId"])), reason)


async def fail_clone_attempt(conn: Connection, message: Message, reason: str) -> None:
    """Dead-letter hook of the clone queue: the attempt fails with the reason, in the same transaction."""
    await fail_dead_lettered(conn, _attempt_id(message), reason)
