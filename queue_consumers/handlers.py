"""From queue to the area's worker step: one row per queue, with what a dead letter on it fails.

The clone step runs in one of two modes: in-process, or through the API's internal route
(`CONSUMER_MODE=http`), which runs the very same function.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
import msgspec

from backend import queues
from backend.clone import preview_step
from backend.clone import step as clone_step
from backend.context import Lifecycle, Outcome
from backend.db.connection import Connection
from backend.errors import DatabaseUnavailable, ServiceUnavailable, StorageUnavailable
from backend.samples import step as sample_step
from backend.synthesis import step as synthesis_step
from backend.webhooks import step as webhook_step
from queue_consumers.runtime import DeadLetterHook, Handler, Message, Reader


@dataclass(frozen=True)
class Retries:
    """A queue's own failure schedule, instead of the workers' (VOICEGATE_QUEUE_MAX_READS, 1 s doubling)."""

    max_reads: int
    backoff_base: float
    backoff_max: float


@dataclass(frozen=True)
class QueueRoute:
    """How one queue's messages are worked, what a dead letter on it fails, and its retries if its own."""

    queue: str
    handler: Handler
    on_dead_letter: DeadLetterHook | None = None
    retries: Retries | None = None
    #: How the queue is read, when more than pgmq's read (the clone queue leases its attempts as it reads).
    reader: Reader | None = None
    #: Whether its handler reads or writes Storage (its consumer then takes no work while Storage is down).
    needs_storage: bool = True


def _uuid(message: Message, field: str) -> uuid.UUID:
    return uuid.UUID(str(message.message[field]))


def _step(run: Callable[[Message], Awaitable[Outcome]]) -> Handler:
    """A worker step as a handler: done, or the time to look again."""

    async def handle(message: Message) -> datetime | None:
        return (await run(message)).retry_at

    return handle


async def _fail_attempt(conn: Connection, message: Message, code: str, reason: str) -> None:
    await clone_step.fail_dead_lettered(conn, _uuid(message, "attemptId"), reason, code=code)


async def _fail_sample(conn: Connection, message: Message, code: str, reason: str) -> None:
    # A sample keeps a reason, not a code: the code leads it when it is not the usual one.
    await sample_step.fail_sample(
        conn, _uuid(message, "sampleId"), reason if code == "dead_lettered" else f"{code}: {reason}"
    )


async def _fail_job(conn: Connection, message: Message, code: str, reason: str) -> None:
    await synthesis_step.fail_dead_lettered_job(conn, _uuid(message, "jobId"), reason, code=code)


def queue_routes(
    ctx: Lifecycle, worker_id: str, *, clone: Handler | None = None, webhook_retries: Retries | None = None
) -> list[QueueRoute]:
    """Every work queue's route; `clone` replaces the in-process clone step (see `clone_over_http`);
    webhook deliveries follow `webhook_retries` (spanning hours, as receivers' outages do)."""
    in_process_clone = _step(
        lambda m: clone_step.process_attempt(ctx, _uuid(m, "attemptId"), worker_id, leased=m.leased, read_at=m.read_at)
    )
    return [
        QueueRoute(
            queues.CLONE,
            clone or in_process_clone,
            _fail_attempt,
            reader=clone_step.lease_on_read(ctx, worker_id),
            needs_storage=clone is None,  # over HTTP, the API reaches Storage, not this worker
        ),
        QueueRoute(queues.PREVIEW, _step(lambda m: preview_step.process_preview(ctx, _uuid(m, "attemptId")))),
        QueueRoute(
            queues.SAMPLE_CHECK, _step(lambda m: sample_step.process_sample(ctx, _uuid(m, "sampleId"))), _fail_sample
        ),
        QueueRoute(
            queues.SYNTHESIS,
            _step(lambda m: synthesis_step.process_synthesis(ctx, _uuid(m, "jobId"), worker_id)),
            _fail_job,
        ),
        QueueRoute(
            queues.WEBHOOK,
            _step(lambda m: webhook_step.process_delivery(ctx, m.message)),
            retries=webhook_retries,
            needs_storage=False,
        ),
    ]


#: The API's answers that are its dependencies' outages, raised here as they would be in-process (not a
#: failed delivery).
_OUTAGES = {error.code: error for error in (DatabaseUnavailable, StorageUnavailable)}


def clone_over_http(client: httpx.AsyncClient, service_key: str, worker_id: str) -> Handler:
    """`VOICE_CLONE_PROCESS` through the internal route (`client` carries the API base URL); a non-2xx
    answer is a failed delivery (retried, then dead-lettered), unless it is a 503 for the API's database
    or Storage being down."""

    async def handle(message: Message) -> datetime | None:
        reflection = message.message.get("reflectionId")
        path = clone_step.internal_process_path(
            uuid.UUID(reflection) if reflection else None, _uuid(message, "attemptId")
        )
        response = await client.post(
            path, headers={"Authorization": f"Bearer {service_key}", "X-Voicegate-Worker": worker_id}
        )
        outage = _outage_of(response)
        if outage is not None:
            raise outage
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=Outcome).retry_at

    return handle


def _outage_of(response: httpx.Response) -> ServiceUnavailable | None:
    """The API's 503 for its database or Storage being down, as the error it answered for; None otherwise."""
    if response.status_code != httpx.codes.SERVICE_UNAVAILABLE:
        return None
    try:
        problem = response.json()
    except ValueError:
        return None
    error = _OUTAGES.get(str(problem.get("code"))) if isinstance(problem, dict) else None
    return None if error is None else error(problem.get("detail"))
