"""The worker: every queue's consumer (plus the maintenance sweep), run until asked to stop.

`voicegate worker` runs it as its own process; `voicegate up` runs it inside the API process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import signal
import socket
import uuid
from collections.abc import Sequence

import httpx

from backend import queues
from backend.context import WorkerContext
from backend.outages import STORAGE
from backend.settings import Settings
from backend.storage.client import SupabaseObjectStorage, answers
from backend.webhooks.step import RETRY_MAX_SECONDS
from queue_consumers.handlers import QueueRoute, Retries, clone_over_http, queue_routes
from queue_consumers.maintenance import run_maintenance
from queue_consumers.runtime import ConsumerConfig, QueueConsumer
from queue_consumers.storage_wait import DependencyCheck

log = logging.getLogger(__name__)
#: While Storage is unreachable, a worker asks it again this often (one probe for all its consumers) ...
STORAGE_PROBE_EVERY = 2.0
#: ... and gives each probe this long to answer.
STORAGE_PROBE_WITHIN = 5.0


class StorageUnreachable(Exception):
    """Storage does not answer as the worker starts, so it refuses to; the message says where and why, in
    one line."""


def new_worker_id() -> str:
    """A name for this worker that is unique across hosts and restarts (recorded on leases and events), logged: on
    a host network every container has the host's name, and the log is how a lease's holder is found."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    log.info("worker %s starting", worker_id)
    return worker_id


def build_consumers(
    settings: Settings,
    ctx: WorkerContext,
    *,
    listen_dsn: str | None,
    worker_id: str,
    api_client: httpx.AsyncClient | None = None,
) -> list[QueueConsumer]:
    """One consumer per queue; with `CONSUMER_MODE=http` the clone step goes through `api_client`
    (checking samples, previews and synthesis need only Storage and the provider, and run here). The
    consumers whose handlers use Storage share one check: none takes work while Storage does not answer."""

    def config(route: QueueRoute) -> ConsumerConfig:
        # The clone step's statements go in groups as large as the batches that start together (`Database.grouped`),
        # so that queue reads more at once than the others, and in step; its provider calls are held to the
        # provider's slots instead.
        in_step = route.queue == queues.CLONE
        at_once = settings.clone_concurrency if in_step else settings.worker_concurrency
        base = ConsumerConfig(
            queue=route.queue,
            visibility_seconds=settings.queue_visibility_seconds,
            concurrency=at_once,
            batch_size=at_once,
            in_step=in_step,
            max_reads=settings.queue_max_reads,
            poll_interval=settings.queue_poll_interval,
            idle_poll_interval=settings.queue_idle_poll_interval,
            storage_wait_seconds=settings.storage_wait_seconds,
        )
        if route.in_turn:
            base = dataclasses.replace(base, gather_seconds=0.0)
        if route.retries is None:
            return base
        retries = route.retries
        return dataclasses.replace(
            base, max_reads=retries.max_reads, backoff_base=retries.backoff_base, backoff_max=retries.backoff_max
        )

    clone = None
    if settings.consumer_mode == "http":
        key = settings.auth.service_key if settings.auth else None
        if api_client is None or key is None:
            raise ValueError("CONSUMER_MODE=http needs the API's address and the service key")
        clone = clone_over_http(api_client, key.reveal(), worker_id)
    webhook_retries = Retries(settings.webhook_max_attempts, settings.webhook_retry_base_seconds, RETRY_MAX_SECONDS)
    storage = DependencyCheck(
        STORAGE, functools.partial(answers, ctx.storage, STORAGE_PROBE_WITHIN), STORAGE_PROBE_EVERY
    )
    return [
        QueueConsumer(
            ctx.db,
            config(route),
            route.handler,
            listen_dsn=listen_dsn,
            on_dead_letter=route.on_dead_letter,
            reader=route.reader,
            dependency=storage if route.needs_storage else None,
        )
        for route in queue_routes(
            ctx, worker_id, clone=clone, webhook_retries=webhook_retries, slots=settings.worker_concurrency
        )
    ]


async def consume_in_app(
    settings: Settings, ctx: WorkerContext, listen_dsn: str, api_client: httpx.AsyncClient, stopping: asyncio.Event
) -> None:
    """The consumers of `voicegate up`, inside its app (`backend.app.ConsumersInApp`), until `stopping` is set;
    with `CONSUMER_MODE=http` the clone step reaches the app itself through `api_client`."""
    consumers = build_consumers(settings, ctx, listen_dsn=listen_dsn, worker_id=new_worker_id(), api_client=api_client)
    await run_worker(settings, ctx, consumers, stopping)


async def run_worker(
    settings: Settings, ctx: WorkerContext, consumers: Sequence[QueueConsumer], stopping: asyncio.Event
) -> None:
    """Run the consumers and the maintenance sweep until `stopping` is set, then drain.

    Any of them dying for an unexpected reason stops the others and raises: a worker that silently
    stopped consuming one queue would be worse than one that exits.
    """
    tasks = [asyncio.create_task(c.run(stopping), name=f"consumer:{c.config.queue}") for c in consumers]
    tasks.append(asyncio.create_task(run_maintenance(settings, ctx, stopping), name="maintenance"))
    log.info("worker consuming %s", ", ".join(c.config.queue for c in consumers))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                stopping.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise RuntimeError(f"worker task {task.get_name()} died") from task.exception()
    finally:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve_worker(settings: Settings, dsn: str) -> int:
    """`voicegate worker`: its own pool, Storage client, provider clients, CPU executor and C2PA signer, built in
    the worker's own process (`backend.compose.consumers.worker_process`); SIGTERM or SIGINT drains in-flight work
    and returns 0, a dead consumer returns 1.

    Raises StorageUnreachable first thing when Storage does not answer (a worker pointed at the wrong address
    would otherwise wait for it forever, looking healthy), and SettingsError before consuming anything when
    the C2PA credentials are unusable.
    """
    from backend.compose.consumers import worker_process  # noqa: PLC0415

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with worker_process(settings, dsn, storage_answers=functools.partial(_answers, settings)) as worker:
        consumers = build_consumers(
            settings, worker.context, listen_dsn=dsn, worker_id=new_worker_id(), api_client=worker.api
        )
        try:
            await run_worker(settings, worker.context, consumers, stopping)
        except RuntimeError:
            log.critical("worker stopped: a consumer died", exc_info=True)
            return 1
    log.info("worker drained and stopped")
    return 0


async def _answers(settings: Settings, storage: SupabaseObjectStorage) -> None:
    """StorageUnreachable when `storage` does not answer (a worker pointed at the wrong address would
    otherwise wait for it forever, looking healthy)."""
    unreachable = await storage.unreachable(STORAGE_PROBE_WITHIN)
    if unreachable is not None:
        raise StorageUnreachable(f"cannot reach Storage at {settings.storage_public_url} ({unreachable})")
