"""The queue consumers: their context (inside `voicegate up`, or in `voicegate worker`'s own process) and
`voicegate worker`'s process, built under one `AsyncExitStack`."""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx

from backend.compose.parts import enter_worker_context, open_database, storage_client
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db.pool import create_worker_pool
from backend.providers.http import create_http_client
from backend.settings import Settings
from backend.storage.client import ObjectStorage, SupabaseObjectStorage
from backend.tls import verifying_context

if TYPE_CHECKING:
    from backend.provenance import ProvenanceSigner

log = logging.getLogger(__name__)

#: Runs the queue consumers over a worker context until the event is set. The entry points pass them
#: (`queue_consumers.worker`): `backend/` stands below the consumers and does not import them.
Consumers = Callable[[WorkerContext, asyncio.Event], Coroutine[Any, Any, None]]

#: What the consumers' steps import on first use: scipy.signal, for the resampling and filters that mark every
#: rendered WAV and measure every sample (0.4 CPU-s and 47 MB on top of what the consumers import anyway, which a
#: process that never marks or measures is spared). Imported as the consumers start, on a thread at the process's
#: priority: a synthesis job of a user with other jobs in hand does its CPU work on a niced thread (`backend.cpu`),
#: and an import there holds the GIL through most of its CPU time, so the whole process (its event loop, its
#: leases) waited whenever the kernel held the niced thread back. On one busy core, `voicegate up` then took over
#: 50 s to stop after SIGTERM, the drained job still importing, in 6 of 8 runs of tests/e2e/test_removed_user_flood.py.
#: The `local` engine loads its voice at the process's priority itself (`LocalProvider`).
FIRST_USE_IMPORTS: Final = ("scipy.signal",)


async def consumers_context(
    stack: AsyncExitStack,
    settings: Settings,
    dsn: str,
    storage: ObjectStorage,
    http_client: httpx.AsyncClient,
    *,
    signer: ProvenanceSigner,
    cpu: CpuExecutor,
) -> WorkerContext:
    """The queue consumers' worker context, on a worker pool of its own (opened without waiting: a worker starts
    while the database is down), both closed with `stack`; `signer`, `storage`, `http_client` and `cpu` stay
    the caller's (`voicegate up` shares them with the API)."""
    pool = create_worker_pool(dsn, settings.pool_limits, patience=settings.queue_visibility_seconds)
    db = await open_database(stack, pool, wait=False)
    import_first_use()
    return enter_worker_context(stack, settings, db, storage, http_client, signer=signer, cpu=cpu)


def import_first_use() -> threading.Thread:
    """A thread, started, importing `FIRST_USE_IMPORTS` (see there why); a module that cannot be imported is left
    for its first use to meet. Not joined as the consumers stop: a daemon's import is no work of anyone's, and a
    join there held a stop right after start-up back 0.3 s (1 s on a busy core), the event loop with it."""

    def run() -> None:
        for name in FIRST_USE_IMPORTS:
            try:
                importlib.import_module(name)
            except ImportError:
                log.warning("%s is left to be imported on first use", name, exc_info=True)

    thread = threading.Thread(target=run, name="voicegate-first-use-imports", daemon=True)
    thread.start()
    return thread


def start_consumers(stack: AsyncExitStack, consumers: Consumers, ctx: WorkerContext) -> asyncio.Task[None]:
    """`consumers` over `ctx` as a task, asked to stop and awaited (drained) when `stack` closes."""
    stopping = asyncio.Event()
    task = asyncio.create_task(consumers(ctx, stopping), name="worker")

    async def drain() -> None:
        stopping.set()
        await asyncio.gather(task, return_exceptions=True)

    stack.push_async_callback(drain)
    return task


@dataclass(frozen=True)
class WorkerProcess:
    """What `voicegate worker` holds while it runs: the consumers' worker context, and a client of the API (its
    internal route, with `CONSUMER_MODE=http`)."""

    context: WorkerContext
    api: httpx.AsyncClient


@asynccontextmanager
async def worker_process(
    settings: Settings, dsn: str, *, storage_answers: Callable[[SupabaseObjectStorage], Awaitable[None]]
) -> AsyncIterator[WorkerProcess]:
    """`voicegate worker`'s own Storage client, C2PA signer, provider clients, API client, CPU executor and
    worker context, under one stack. `storage_answers` checks Storage first thing (raising when it does not answer),
    before the signer is made: SettingsError when the C2PA credentials are unusable."""
    from backend.provenance import ProvenanceSigner  # noqa: PLC0415 - the native signer, only where it signs

    async with AsyncExitStack() as stack:
        storage = await stack.enter_async_context(storage_client(settings))
        await storage_answers(storage)
        signer = ProvenanceSigner.from_settings(settings)
        stack.callback(signer.close)
        provider_http = await stack.enter_async_context(create_http_client())
        api = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=settings.api_base_url,
                timeout=httpx.Timeout(600.0, connect=5.0),
                verify=verifying_context(trust_env=True),
            )
        )
        cpu = await stack.enter_async_context(CpuExecutor(settings.cpu_threads(serves_api=False)))
        ctx = await consumers_context(stack, settings, dsn, storage, provider_http, signer=signer, cpu=cpu)
        if ctx.likeness_probe:
            await _stock_print(cpu)
        yield WorkerProcess(ctx, api)


async def _stock_print(cpu: CpuExecutor) -> None:
    """The stock voice's print (`likeness.stock_print`, once a process: the bundled voice loaded and one short
    render), made before the worker takes any message rather than in its first likeness probe. One that cannot
    be made now is left to the probe, which says so."""
    from backend.clone import likeness  # noqa: PLC0415 - the worker's own, beside its consumers

    try:
        await cpu.run(None, likeness.stock_print)
    except Exception:  # the first probe meets it again, as it would have
        log.warning("the stock voice's print is left to the first likeness probe", exc_info=True)
