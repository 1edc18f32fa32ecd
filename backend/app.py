"""The Litestar application factory; its lifespan owns the connection pool, Storage, the provider clients,
the C2PA signer, the CPU executor, the webhook sender and (in `voicegate up`) the queue consumers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.types import ExceptionHandler

from backend.auth.verify import TokenVerifier
from backend.compose import build_lifecycle, worker_lifecycle
from backend.context import Lifecycle
from backend.cpu import CpuExecutor
from backend.db.admission import Admission
from backend.db.pool import Pool, create_pool
from backend.errors import StreamsLimited
from backend.http.attempts import AttemptsController, InternalController
from backend.http.budget import DATABASE_FREE, DatabaseAdmissionMiddleware
from backend.http.clone_jobs import CloneJobsController
from backend.http.concurrency import UserConcurrency
from backend.http.consents import ConsentsController
from backend.http.dependency_order import resolve_dependencies_in_order
from backend.http.deps import DEPENDENCIES
from backend.http.docs import COMPONENTS, ClosedStructs
from backend.http.health import health_routes, healthz, storage_readiness
from backend.http.host import HostCheckMiddleware
from backend.http.idempotency import IdempotencyKeys
from backend.http.json_request import JsonCheckedRequest
from backend.http.metrics import REFUSED, MetricsMiddleware
from backend.http.problem import problem_response
from backend.http.reflections import ReflectionsController, SessionsController
from backend.http.samples import VoiceSamplesController
from backend.http.speech import ReflectionSpeechController, VoiceSpeechController
from backend.http.voices import CloneController, VoicesController
from backend.http.web import docs_render_plugins, web_handlers
from backend.http.webhooks import WebhooksController
from backend.provenance import ProvenanceSigner
from backend.providers.http import create_http_client
from backend.settings import Settings, SettingsError
from backend.storage.client import ObjectStorage, SupabaseObjectStorage
from backend.tls import verifying_context

# httpx logs every request URL at INFO, and signed Storage URLs carry their token in the query.
logging.getLogger("httpx").setLevel(logging.WARNING)

#: Runs the queue consumers inside the app (`voicegate up`) until its event is set: given the settings, the
#: worker's own lifecycle, the address to LISTEN on and a client of this very app. The entry point passes it
#: (`queue_consumers.worker.consume_in_app`): `backend/` stands below the consumers and does not import them.
ConsumersInApp = Callable[[Settings, Lifecycle, str, httpx.AsyncClient, asyncio.Event], Awaitable[None]]


def create_app(settings: Settings, dsn: str, *, consumers: ConsumersInApp | None = None) -> Litestar:
    """Build the app for `settings` (with auth settings, see `with_auth`), talking to `dsn`.

    In embedded mode the app also serves the Storage stand-in under `/storage/v1`, so the stock
    Supabase storage client works against it exactly as against a Supabase project. With `consumers` the
    queue consumers run inside the app (`voicegate up`); if they die, the failure is logged and
    `app.state.worker_failed` is set so the entry point can exit non-zero.

    Raises SettingsError when the C2PA signing credentials are unusable (see `ProvenanceSigner`), before
    anything is served.
    """
    if settings.auth is None:
        raise ValueError("create_app needs settings with auth (backend.settings.with_auth)")
    signer = ProvenanceSigner.from_settings(settings)
    resolve_dependencies_in_order()
    pool = create_pool(dsn, settings.pool_limits)
    # The Storage stand-in and the worker (`worker_lifecycle`) run on pools of their own: a burst of either
    # cannot take the connections the API's requests need (nor the stand-in those of the requests that call it).
    storage_pool = create_pool(dsn, settings.pool_limits) if settings.embedded else None
    pools = [opened for opened in (pool, storage_pool) if opened is not None]
    kinds = {pool: "api", storage_pool: "storage"}
    admissions = {opened: Admission(opened, on_refusal=REFUSED.labels(kinds[opened]).inc) for opened in pools}
    jwks_http = httpx.AsyncClient(
        timeout=settings.auth.jwks_timeout, follow_redirects=False, verify=verifying_context(trust_env=True)
    )
    verifier = TokenVerifier(settings.auth, jwks_http)
    handlers: list[Any] = [
        *health_routes,
        ReflectionsController,
        SessionsController,
        VoicesController,
        CloneController,
        VoiceSamplesController,
        ConsentsController,
        CloneJobsController,
        ReflectionSpeechController,
        VoiceSpeechController,
        WebhooksController,
        AttemptsController,
        InternalController,
        *web_handlers(settings),
        *(_embedded_handlers(settings, storage_pool or pool, verifier) if settings.embedded else ()),
    ]

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # wait=False: the API starts (and answers /readyz with 503) even while the database is down.
        for opening in pools:
            await opening.open(wait=False)
        app.state.pool = pool
        app.state.idempotency_keys = IdempotencyKeys(pool)
        app.state.verifier = verifier
        app.state.user_slots = UserConcurrency(settings.user_concurrency)
        app.state.stream_slots = UserConcurrency(settings.user_streams, StreamsLimited)
        app.state.settings = settings
        app.state.storage = _storage_client(settings, app)
        app.state.storage_probe = storage_readiness(app.state.storage)
        app.state.worker_failed = False
        provider_http = create_http_client()
        # One executor for the API and the in-process worker: CPU is the process's, and fairness between
        # users holds only if every CPU-bound call of theirs waits in the same queue.
        app.state.cpu = cpu = CpuExecutor(settings.cpu_workers)
        app.state.lifecycle = build_lifecycle(settings, pool, app.state.storage, provider_http, signer, cpu=cpu)
        stopping = asyncio.Event()
        worker = None
        # The worker's own lifecycle and pool; the signer, Storage, provider clients and executor it uses
        # are the API's, closed with it.
        consuming = AsyncExitStack()
        if consumers is not None:
            worker_ctx = await consuming.enter_async_context(
                worker_lifecycle(settings, dsn, app.state.storage, provider_http, signer, cpu=cpu)
            )
            worker = _start_worker(app, consumers, settings=settings, dsn=dsn, ctx=worker_ctx, stopping=stopping)
        try:
            yield
        finally:
            stopping.set()
            if worker is not None:
                await asyncio.gather(worker, return_exceptions=True)
            await consuming.aclose()
            await app.state.lifecycle.aclose()
            await cpu.aclose()
            await provider_http.aclose()
            await app.state.storage.aclose()
            await app.state.idempotency_keys.aclose()
            for opened in pools:
                await admissions[opened].aclose()
                await opened.close()
            await jwks_http.aclose()

    return Litestar(
        route_handlers=handlers,
        dependencies=DEPENDENCIES,
        middleware=[
            HostCheckMiddleware(),
            MetricsMiddleware(),
            DatabaseAdmissionMiddleware(
                settings.db_timeout, _admission_by_path(admissions[pool], storage_pool, admissions)
            ),
        ],
        lifespan=[lifespan],
        exception_handlers={Exception: _exception_handler(serves_storage=settings.embedded)},
        # Every JSON body is read through it: checked for its encoding and depth before it is decoded.
        request_class=JsonCheckedRequest,
        plugins=[ClosedStructs()],
        openapi_config=OpenAPIConfig(
            title="voicegate",
            version="0.1.0",
            path="/schema",
            # The documents and their pages are served whatever the database does.
            openapi_router=Router("/schema", route_handlers=[], include_in_schema=False, opt={DATABASE_FREE: True}),
            render_plugins=docs_render_plugins(),
            components=COMPONENTS,
        ),
        # Logging is configured once by the entry point (VOICEGATE_LOG_LEVEL); Litestar's default
        # config would reset the root logger to INFO with its own format.
        logging_config=None,
        debug=False,
    )


def create_storage_app(settings: Settings, dsn: str) -> Litestar:
    """The Storage stand-in as a server of its own (`voicegate storage`): `/storage/v1` and `/healthz`, over a
    pool of its own on `dsn`, with its objects under the data directory.

    For a stack on DATABASE_URL without a Supabase project (compose, Kubernetes): its API and workers
    reach it at SUPABASE_URL as they would Supabase Storage. One such server holds the files, so it is the
    only one. Needs `settings` with auth (`with_auth`) holding the project JWT secret, which signs its URL
    tokens as Supabase Storage's does."""
    if settings.auth is None:
        raise ValueError("create_storage_app needs settings with auth (backend.settings.with_auth)")
    jwt_secret = settings.auth.jwt_secret
    if jwt_secret is None:
        raise SettingsError("the Storage stand-in signs its URL tokens with SUPABASE_JWT_SECRET: set it")
    pool = create_pool(dsn, settings.pool_limits)
    admission = Admission(pool, on_refusal=REFUSED.labels("storage").inc)
    jwks_http = httpx.AsyncClient(
        timeout=settings.auth.jwks_timeout, follow_redirects=False, verify=verifying_context(trust_env=True)
    )
    verifier = TokenVerifier(settings.auth, jwks_http)
    from backend.embedded.storage.in_process import api_storage_router  # noqa: PLC0415 - the stand-in only

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await pool.open(wait=False)
        try:
            yield
        finally:
            await admission.aclose()
            await pool.close()
            await jwks_http.aclose()

    return Litestar(
        route_handlers=[healthz, api_storage_router(pool, verifier, jwt_secret, settings.data_dir / "storage")],
        middleware=[HostCheckMiddleware(), DatabaseAdmissionMiddleware(settings.db_timeout, lambda _: admission)],
        lifespan=[lifespan],
        exception_handlers={Exception: _exception_handler(serves_storage=True)},
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def _admission_by_path(
    api: Admission, storage_pool: Pool | None, admissions: dict[Pool, Admission]
) -> Callable[[str], Admission]:
    """Which admission a request's path is under: the Storage stand-in's own under `/storage/v1`, when this
    process serves it, else the API's."""
    if storage_pool is None:
        return lambda _: api
    from backend.embedded.storage.routes import STORAGE_PATH  # noqa: PLC0415 - the stand-in only

    storage = admissions[storage_pool]
    return lambda path: storage if path.startswith(STORAGE_PATH) else api


def _exception_handler(*, serves_storage: bool) -> ExceptionHandler[Exception]:
    """problem+json, except under `/storage/v1` when this process serves the Storage stand-in: there every
    answer, an unknown route's too, is Storage's own error, as Supabase clients parse it."""
    if not serves_storage:
        return problem_response
    from backend.embedded.storage.routes import storage_errors_under  # noqa: PLC0415 - the stand-in only

    return storage_errors_under(problem_response)


def _embedded_handlers(settings: Settings, storage_pool: Pool, verifier: TokenVerifier) -> list[Any]:
    """Embedded mode's own routes: the Storage stand-in under `/storage/v1` (on `storage_pool`), and the
    demo page's dev sign-in."""
    from backend.embedded.storage.in_process import api_storage_router  # noqa: PLC0415
    from backend.http.dev_session import dev_session_handler  # noqa: PLC0415 - embedded only

    jwt_secret = settings.auth.jwt_secret if settings.auth else None
    if jwt_secret is None:
        raise ValueError("embedded Storage signs its URL tokens with the project JWT secret, which is unset")
    return [
        api_storage_router(storage_pool, verifier, jwt_secret, settings.data_dir / "storage"),
        dev_session_handler(jwt_secret),
    ]


def _start_worker(
    app: Litestar, consumers: ConsumersInApp, *, settings: Settings, dsn: str, ctx: Lifecycle, stopping: asyncio.Event
) -> asyncio.Task[None]:
    """The consumers (over `ctx`, the worker's own lifecycle and pool) as a task of the app; a death is
    logged loudly and remembered for the exit code."""
    # CONSUMER_MODE=http inside `up`: the workers reach this very app's internal route in-process.
    api_client = httpx.AsyncClient(
        base_url="http://voicegate.internal",
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]  # Litestar is an ASGI app
        timeout=httpx.Timeout(600.0),
    )

    async def supervise() -> None:
        try:
            await consumers(settings, ctx, dsn, api_client, stopping)
        except Exception:
            logging.getLogger(__name__).critical("the queue consumers died; stopping voicegate", exc_info=True)
            app.state.worker_failed = True
            # An API whose work is never processed must not look healthy: shut the server down.
            os.kill(os.getpid(), signal.SIGTERM)
            raise
        finally:
            await api_client.aclose()

    return asyncio.create_task(supervise(), name="worker")


def _storage_client(settings: Settings, app: Litestar) -> ObjectStorage:
    """The one storage client: Supabase Storage, or in embedded mode our own `/storage/v1` reached
    in-process through the same HTTP client code (no socket, no dependency on the bind address)."""
    key = settings.auth.service_key if settings.auth else None
    if key is None:
        raise ValueError("the storage client needs SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY")
    if settings.embedded:
        from backend.embedded.storage.in_process import in_process_client  # noqa: PLC0415 - embedded only

        return in_process_client(app, key.reveal(), public_url=settings.storage_public_url)
    return SupabaseObjectStorage(settings.storage_public_url, key.reveal())
