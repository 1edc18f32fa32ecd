"""From queue to the area's worker step: one row per queue, each with its area's handler and what a dead letter
on it fails.

The clone step runs in one of two modes: in-process, or through the API's internal route
(`CONSUMER_MODE=http`), which runs the very same function.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
import msgspec

from backend import queues
from backend.clone import preview_step
from backend.clone import step as clone_step
from backend.context import Outcome, WorkerContext
from backend.erasure import step as erasure_step
from backend.errors import DatabaseUnavailable, ServiceUnavailable, StorageUnavailable
from backend.queues import DeadLetterHook, Handler, Message, Reader
from backend.samples import step as sample_step
from backend.settings import DEFAULT_WORKER_CONCURRENCY
from backend.synthesis import step as synthesis_step
from backend.webhooks import step as webhook_step


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
    #: Whether its reader takes messages in turn by owner, keeping slots for other owners (`queues.Turns`): its
    #: consumer then reads as soon as a slot is free, since what a kept slot is for is a message that just came.
    in_turn: bool = False


def queue_routes(
    ctx: WorkerContext,
    worker_id: str,
    *,
    clone: Handler | None = None,
    webhook_retries: Retries | None = None,
    slots: int = DEFAULT_WORKER_CONCURRENCY,
) -> list[QueueRoute]:
    """Every work queue's route, each to its area's step; `clone` replaces the in-process clone step (see
    `clone_over_http`); webhook deliveries follow `webhook_retries` (spanning hours, as receivers' outages do).
    The synthesis and webhook queues, whose consumers each have `slots`, are read in turn by user."""
    turns = queues.Turns(slots)
    shares = webhook_step.DeliveryShares()
    return [
        QueueRoute(
            queues.CLONE,
            clone or clone_step.attempt_handler(ctx, worker_id),
            clone_step.on_dead_letter,
            reader=clone_step.lease_on_read(ctx, worker_id),
            needs_storage=clone is None,  # over HTTP, the API reaches Storage, not this worker
        ),
        QueueRoute(queues.PREVIEW, preview_step.preview_handler(ctx)),
        QueueRoute(queues.SAMPLE, sample_step.sample_handler(ctx), sample_step.on_dead_letter),
        QueueRoute(
            queues.SYNTHESIS,
            synthesis_step.synthesis_handler(ctx, worker_id, turns),
            synthesis_step.on_dead_letter,
            reader=synthesis_step.reader(turns),
            in_turn=True,
        ),
        QueueRoute(
            queues.WEBHOOK,
            webhook_step.delivery_handler(ctx, shares),
            retries=webhook_retries,
            reader=webhook_step.reader(shares, slots),
            needs_storage=False,
        ),
        QueueRoute(queues.ERASURE, erasure_step.erasure_handler(ctx)),
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
        reflection_id = uuid.UUID(reflection) if reflection else None
        path = clone_step.internal_process_path(reflection_id, message.id_of("attemptId"))
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
