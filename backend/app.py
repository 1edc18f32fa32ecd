"""The Litestar application factory: the routes, the middleware and the documents. What the app runs on (the
pools, Storage, the provider clients, the C2PA signer, the CPU executor, the webhook sender and, in `voicegate
up`, the queue consumers) its lifespan builds and closes through the composition root (`backend.compose.api`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig

from backend.compose.api import ConsumersInApp, RouteParts, api_process, route_parts
from backend.compose.embedded import EmbeddedMode
from backend.errors import SettingsError
from backend.http.deps import DEPENDENCIES
from backend.http.documents.openapi import COMPONENTS, ClosedStructs
from backend.http.pipeline.db_admission import DATABASE_FREE, DatabaseAdmissionMiddleware
from backend.http.pipeline.dependency_order import resolve_dependencies_in_order
from backend.http.pipeline.entry import EntryCheckMiddleware
from backend.http.pipeline.exchange import Exchange
from backend.http.pipeline.host import HostCheckMiddleware
from backend.http.pipeline.json_request import JsonCheckedRequest
from backend.http.pipeline.methods import HeadAndOptions
from backend.http.pipeline.problem import problem_response
from backend.http.routes.attempts import AttemptsController, InternalController
from backend.http.routes.consents import ConsentsController, SampleReadingController
from backend.http.routes.dev_session import dev_session_handler
from backend.http.routes.health import health_routes
from backend.http.routes.provenance import ProvenanceController
from backend.http.routes.reflections import ReflectionsController, SessionsController
from backend.http.routes.samples import VoiceSamplesController
from backend.http.routes.speech import ReflectionSpeechController, VoiceSpeechController
from backend.http.routes.synthesis import SynthesisJobsController
from backend.http.routes.usage import UsageController
from backend.http.routes.voices import CloneController, VoicesController
from backend.http.routes.web import docs_render_plugins, web_handlers
from backend.http.routes.webhooks import WebhooksController
from backend.secret import Secret
from backend.settings import Settings

#: The API's routes, in every mode (embedded mode adds its own, see `_embedded_handlers`).
API_HANDLERS: tuple[Any, ...] = (
    *health_routes,
    ReflectionsController,
    SessionsController,
    VoicesController,
    CloneController,
    VoiceSamplesController,
    ConsentsController,
    SampleReadingController,
    ProvenanceController,
    SynthesisJobsController,
    ReflectionSpeechController,
    VoiceSpeechController,
    UsageController,
    WebhooksController,
    AttemptsController,
    InternalController,
)


def create_app(
    settings: Settings,
    dsn: str,
    *,
    consumers: ConsumersInApp | None = None,
    embedded: EmbeddedMode | None = None,
) -> Litestar:
    """Build the app for `settings` (with auth settings, see `with_auth`), talking to `dsn`.

    In embedded mode the app also serves the Storage stand-in under `/storage/v1`, so the stock Supabase storage
    client works against it exactly as against a Supabase project, and the demo page's sign-in: the stand-ins the
    program hands in as `embedded` (ValueError in embedded mode without them; outside it they are not used). With
    `consumers` the queue consumers run inside the app (`voicegate up`); if they die, the failure is logged and
    `app.state.worker_failed` is set so the entry point can exit non-zero.

    Raises SettingsError when the C2PA signing credentials are unusable (see `ProvenanceSigner`), before
    anything is served.
    """
    if not settings.embedded:
        embedded = None
    elif embedded is None:
        raise ValueError("an app in embedded mode serves the stand-ins for Supabase: hand them in (embedded=)")
    parts = route_parts(settings, dsn, serves_storage=embedded is not None, signs=True)
    resolve_dependencies_in_order()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with api_process(settings, dsn, parts, app, consumers=consumers, embedded=embedded) as process:
            app.state.update(process.named())
            yield

    app = Litestar(
        route_handlers=[*API_HANDLERS, *web_handlers(settings), *_embedded_handlers(settings, parts, embedded)],
        dependencies=DEPENDENCIES,
        middleware=[
            HostCheckMiddleware(),
            DatabaseAdmissionMiddleware(settings.db_timeout),
            EntryCheckMiddleware(settings.json_body_bytes),
        ],
        # What a route reads before it runs (the uploads stream theirs and say their own limits).
        request_max_body_size=settings.json_body_bytes,
        lifespan=[lifespan],
        exception_handlers={
            Exception: problem_response if embedded is None else embedded.storage_errors(problem_response)
        },
        # Every JSON body is read through it: checked for its encoding and depth before it is decoded.
        request_class=JsonCheckedRequest,
        plugins=[ClosedStructs()],
        openapi_config=_openapi_config(),
        # Logging is configured once by the entry point (VOICEGATE_LOG_LEVEL); Litestar's default
        # config would reset the root logger to INFO with its own format.
        logging_config=None,
        debug=False,
    )
    return behind_the_exchange(app, settings)


def behind_the_exchange(app: Litestar, settings: Settings) -> Litestar:
    """`app`, answering HEAD wherever it answers GET and OPTIONS with every method of a path
    (`backend.http.pipeline.methods`), behind the exchange every request passes: its framing, its body's pace, its
    metrics and access-log line (`backend.http.pipeline.exchange`)."""
    head_and_options = HeadAndOptions(app.asgi_handler, app.asgi_router)
    app.asgi_handler = Exchange(
        head_and_options, body_timeout=settings.body_timeout, body_min_rate=settings.body_min_rate
    )
    return app


def _openapi_config() -> OpenAPIConfig:
    """The API's document at `/schema`, with its pages."""
    return OpenAPIConfig(
        title="voicegate",
        version="0.1.0",
        path="/schema",
        # The documents and their pages are served whatever the database does.
        openapi_router=Router("/schema", route_handlers=[], include_in_schema=False, opt={DATABASE_FREE: True}),
        render_plugins=docs_render_plugins(),
        components=COMPONENTS,
    )


def _embedded_handlers(settings: Settings, parts: RouteParts, embedded: EmbeddedMode | None) -> list[Any]:
    """Embedded mode's own routes: the Storage stand-in under `/storage/v1` (over its own database, with its
    objects under the data directory), and the demo page's dev sign-in."""
    if embedded is None:
        return []
    if parts.storage_db is None:
        raise ValueError("the Storage stand-in's routes need its database (route_parts(..., serves_storage=True))")
    secret = storage_signing_secret(settings)
    storage = embedded.storage_router(parts.storage_db, parts.verifier, secret, settings.data_dir / "storage")
    return [storage, dev_session_handler(secret, embedded.dev_session)]


def storage_signing_secret(settings: Settings) -> Secret:
    """The project JWT secret, which signs the stand-in's URL tokens as Supabase Storage's does."""
    secret = settings.auth.jwt_secret if settings.auth else None
    if secret is None:
        raise SettingsError("the Storage stand-in signs its URL tokens with SUPABASE_JWT_SECRET: set it")
    return secret
