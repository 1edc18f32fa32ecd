"""The API process (`voicegate serve`, and `voicegate up` with the queue consumers inside it) and the Storage
stand-in's own server (`voicegate storage`), each built under one `AsyncExitStack`.

A Litestar app's route table is fixed when the app is built, and the Storage stand-in's routes are built over
its database and the token verifier; so those two are made with the app (`route_parts`: objects only, no
connection made, no request sent) and the process enters them on its stack first thing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from backend import queues
from backend.auth.verify import TokenVerifier
from backend.compose.areas import Areas, build_areas
from backend.compose.consumers import Consumers, consumers_context, start_consumers
from backend.compose.embedded import EmbeddedMode
from backend.compose.parts import enter_worker_context, open_database, service_key, storage_client
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db.admission import Admission
from backend.db.pool import create_pool
from backend.db.units import Database
from backend.errors import StreamsLimited
from backend.http.idempotency import IdempotencyKeys
from backend.http.pipeline.concurrency import UserConcurrency
from backend.http.pipeline.metrics import REFUSED
from backend.http.routes.health import storage_readiness
from backend.provenance.verify import Verifier
from backend.providers.http import create_http_client
from backend.queues import QueueAdmission
from backend.settings import Settings
from backend.storage.client import StorageProbe, SupabaseObjectStorage
from backend.tls import verifying_context
from backend.usage.job_admission import JobAdmission

if TYPE_CHECKING:
    from litestar import Litestar

    from backend.provenance import ProvenanceSigner

#: Runs the queue consumers inside the app (`voicegate up`) until its event is set: given the settings, the
#: worker's own context, the address to LISTEN on and a client of this very app. The entry point passes it
#: (`queue_consumers.worker.consume_in_app`): `backend/` stands below the consumers and does not import them.
ConsumersInApp = Callable[[Settings, WorkerContext, str, httpx.AsyncClient, asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class RouteParts:
    """What a server is built with as its app is made: the token verifier (with its JWKS client), when the process
    serves the Storage stand-in the stand-in's own database (a pool of its own), and the API's C2PA signer. Opened
    and closed by the process."""

    verifier: TokenVerifier
    jwks: httpx.AsyncClient
    storage_db: Database | None
    signer: ProvenanceSigner | None = None


def route_parts(settings: Settings, dsn: str, *, serves_storage: bool, signs: bool = False) -> RouteParts:
    """The verifier and (with `serves_storage`) the Storage stand-in's database, its pool not yet opened. The
    stand-in runs on a pool of its own: a burst of its requests cannot take the connections the API's requests
    need (nor those of the requests that call it). With `signs`, the C2PA signer: SettingsError when its
    credentials are unusable, before anything is served."""
    if settings.auth is None:
        raise ValueError("a server needs settings with auth (backend.settings.with_auth)")
    signer = None
    if signs:
        from backend.provenance import ProvenanceSigner  # noqa: PLC0415 - the native signer, only where it signs

        signer = ProvenanceSigner.from_settings(settings)
    jwks = httpx.AsyncClient(
        timeout=settings.auth.jwks_timeout, follow_redirects=False, verify=verifying_context(trust_env=True)
    )
    storage_db = Database(create_pool(dsn, settings.pool_limits)) if serves_storage else None
    return RouteParts(TokenVerifier(settings.auth, jwks), jwks, storage_db, signer)


@dataclass(frozen=True)
class PathAdmissions:
    """Which admission a request's path is under: the Storage stand-in's own under `/storage/v1` when this
    process serves it beside the API, else the process's `main` one."""

    main: Admission
    storage: Admission | None = None
    #: Where the stand-in is served, when it is (`standins.storage.routes.STORAGE_PATH`).
    storage_path: str = ""

    def of(self, path: str) -> Admission:
        """The admission of a request to `path`."""
        return self.storage if self.storage is not None and path.startswith(self.storage_path) else self.main


@dataclass(frozen=True)
class ApiProcess:
    """What the API process holds while it runs; each field is `app.state`'s of the same name, which the
    handlers are given by that name (`backend.http.deps`)."""

    settings: Settings
    admissions: PathAdmissions
    db: Database
    verifier: TokenVerifier
    storage: SupabaseObjectStorage
    storage_probe: StorageProbe
    cpu: CpuExecutor
    worker_context: WorkerContext
    idempotency_keys: IdempotencyKeys
    user_slots: UserConcurrency
    stream_slots: UserConcurrency
    #: A user's synthesis jobs one at a time to the database, and refused at once for a moment after it refused one.
    job_admission: JobAdmission
    #: Whether the queue that checks an uploaded sample takes more work (VOICEGATE_UPLOAD_BACKLOG_SECONDS): the
    #: sample queue (`voice_sample_process`) for `POST /api/v1/voice-samples`, the clone queue for a reflection's
    #: clone upload.
    sample_backlog: QueueAdmission
    clone_backlog: QueueAdmission
    #: The areas' services, each in `app.state` by its own name.
    areas: Areas

    def named(self) -> dict[str, object]:
        """The fields by name, and the areas' services by theirs, for `app.state`."""
        return {**vars(self), **vars(self.areas)}


@asynccontextmanager
async def api_process(
    settings: Settings,
    dsn: str,
    parts: RouteParts,
    app: Litestar,
    *,
    consumers: ConsumersInApp | None = None,
    embedded: EmbeddedMode | None = None,
) -> AsyncIterator[ApiProcess]:
    """The API process of `app` over `dsn`, owning `parts` (see `route_parts`, made with its signer) from the start;
    its Storage client reaches Supabase Storage, or with `embedded` (embedded mode) the stand-in `app` serves, over
    the stand-in's own database (`parts`). With `consumers` the
    queue consumers run inside it (`supervised`), on a worker context and a pool of their own, sharing the signer,
    Storage, the provider clients and the CPU executor.

    Everything is entered on one stack as it is made: on leaving, or when start-up fails half-way, what was
    made is closed in the reverse order (the consumers stopped and drained first, the pools last)."""
    signer = parts.signer
    if signer is None:
        raise ValueError("the API process needs its signer (route_parts(..., signs=True))")
    async with AsyncExitStack() as stack:
        stack.callback(signer.close)
        stack.push_async_callback(parts.jwks.aclose)
        # wait=False: the API starts (and answers /readyz with 503) even while the database is down.
        db = await open_database(stack, create_pool(dsn, settings.pool_limits, by_user=True), wait=False)
        admissions = PathAdmissions(_admission(stack, db, "api"))
        if embedded is not None:
            if parts.storage_db is None:
                raise ValueError("the Storage stand-in needs its database (route_parts(..., serves_storage=True))")
            storage_db = await open_database(stack, parts.storage_db.pool, wait=False)
            storage_admission = _admission(stack, storage_db, "storage")
            admissions = PathAdmissions(admissions.main, storage_admission, embedded.storage_path)
        storage = await stack.enter_async_context(_storage_client(settings, app, embedded))
        provider_http = await stack.enter_async_context(create_http_client())
        # One executor for the API and the in-process worker: CPU is the process's, and fairness between
        # users holds only if every CPU-bound call of theirs waits in the same queue.
        cpu = await stack.enter_async_context(CpuExecutor(settings.cpu_threads(serves_api=True)))
        worker_context = enter_worker_context(stack, settings, db, storage, provider_http, signer=signer, cpu=cpu)
        idempotency_keys = IdempotencyKeys(db)
        stack.push_async_callback(idempotency_keys.aclose)
        # After the signer: in embedded mode it makes the development CA this reader trusts.
        c2pa = Verifier.from_settings(settings)
        stack.callback(c2pa.close)
        job_admission = JobAdmission()
        if consumers is not None:
            worker = await consumers_context(stack, settings, dsn, storage, provider_http, signer=signer, cpu=cpu)
            start_consumers(stack, supervised(app, consumers, settings, dsn), worker)
        yield ApiProcess(
            settings=settings,
            admissions=admissions,
            db=db,
            verifier=parts.verifier,
            storage=storage,
            storage_probe=storage_readiness(storage),
            cpu=cpu,
            worker_context=worker_context,
            idempotency_keys=idempotency_keys,
            user_slots=UserConcurrency(settings.user_concurrency),
            stream_slots=UserConcurrency(settings.user_streams, StreamsLimited),
            job_admission=job_admission,
            sample_backlog=QueueAdmission(db, queues.SAMPLE, settings.upload_backlog_seconds),
            clone_backlog=QueueAdmission(db, queues.CLONE, settings.upload_backlog_seconds),
            areas=build_areas(settings, worker_context, c2pa, job_admission),
        )


def _storage_client(settings: Settings, app: Litestar, embedded: EmbeddedMode | None) -> SupabaseObjectStorage:
    """Supabase Storage, or in embedded mode the stand-in `app` serves, reached in-process through the same HTTP
    client code (no socket, no dependency on the bind address)."""
    if embedded is None:
        return storage_client(settings)
    public_url, version_ttl = settings.storage_public_url, settings.storage_version_seconds
    return embedded.storage_client(app, service_key(settings), public_url=public_url, version_ttl=version_ttl)


def supervised(app: Litestar, consumers: ConsumersInApp, settings: Settings, dsn: str) -> Consumers:
    """The consumers as the app runs them, over the worker's own context: a death is logged loudly, remembered
    for the exit code (`app.state.worker_failed`), and shuts the server down."""

    async def supervise(ctx: WorkerContext, stopping: asyncio.Event) -> None:
        # CONSUMER_MODE=http inside `up`: the workers reach this very app's internal route in-process.
        async with httpx.AsyncClient(
            base_url="http://voicegate.internal",
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]  # Litestar is an ASGI app
            timeout=httpx.Timeout(600.0),
        ) as api_client:
            try:
                await consumers(settings, ctx, dsn, api_client, stopping)
            except Exception:
                logging.getLogger(__name__).critical("the queue consumers died; stopping voicegate", exc_info=True)
                app.state.worker_failed = True
                # An API whose work is never processed must not look healthy: shut the server down.
                os.kill(os.getpid(), signal.SIGTERM)
                raise

    return supervise


@asynccontextmanager
async def storage_server(parts: RouteParts) -> AsyncIterator[PathAdmissions]:
    """The Storage stand-in's own server, owning `parts` (made with `serves_storage`): its pool opened without
    waiting (the server starts while the database is down); answers the admission its requests are under."""
    if parts.storage_db is None:
        raise ValueError("the Storage stand-in's server needs its database (route_parts(..., serves_storage=True))")
    async with AsyncExitStack() as stack:
        stack.push_async_callback(parts.jwks.aclose)
        db = await open_database(stack, parts.storage_db.pool, wait=False)
        yield PathAdmissions(_admission(stack, db, "storage"))


def _admission(stack: AsyncExitStack, db: Database, kind: str) -> Admission:
    """The admission of `db`'s requests, its refusals counted under `kind`; closed with `stack`."""
    admission = Admission(db, on_refusal=REFUSED.labels(kind).inc)
    stack.push_async_callback(admission.aclose)
    return admission
