"""Typed dependencies for route handlers: the verified caller, each area's service, the database (for the
readiness probe), whether Storage answers, the worker context (for the internal route that runs a worker
step) and the users' stream slots, and the guard of the service-only routes.

A handler names what it needs (`claims: Caller`, and its area's service: `webhooks: Webhooks`, ...) and
Litestar injects it by the parameter's name; these providers are the one place that reads `app.state`, which
the app's lifespan fills.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, SkipValidation

from backend.auth.verify import TokenVerifier, UserClaims, bearer_token
from backend.clone.service import AttemptsService
from backend.consents.service import ConsentsService
from backend.context import WorkerContext
from backend.db.units import Database
from backend.errors import AccountGone
from backend.fields import refuse_nul
from backend.http.pipeline.concurrency import UserConcurrency
from backend.http.pipeline.entry import caller_of, release_slot
from backend.policy.consent import Origin
from backend.provenance.service import ProvenanceService
from backend.queues import QueueAdmission
from backend.reflections.service import ReflectionsService
from backend.samples.service import SamplesService
from backend.speech.service import SpeechService
from backend.storage.client import StorageProbe
from backend.synthesis.service import SynthesisService
from backend.usage.service import UsageService
from backend.voices.service import VoicesService
from backend.webhooks.service import WebhooksService


def _verifier(state: State) -> TokenVerifier:
    verifier: TokenVerifier = state.verifier
    return verifier


async def provide_claims(request: Request[Any, Any, Any]) -> AsyncIterator[UserClaims]:
    """The caller's claims, which the entry check verified before the body was read (401 otherwise:
    `backend.http.pipeline.entry`), with one of the caller's request slots it took (429 when they were all taken); the
    slot is given back once the handler has answered. An account the handler's work found gone is remembered, so that
    the token's next request is refused before any work."""
    claims = caller_of(request.scope)
    try:
        yield claims
    except AccountGone:
        _verifier(request.app.state).account_gone(claims)
        raise
    finally:
        release_slot(request.scope)


def db_of(request: Request[Any, Any, Any]) -> Database:
    """The application's database, as its units of work."""
    db: Database = request.app.state.db
    return db


def _from_state(name: str) -> Provide:
    """A dependency that hands out `app.state.<name>`, set by the app's lifespan."""

    def provide(request: Request[Any, Any, Any]) -> Any:
        return getattr(request.app.state, name)

    return Provide(provide, sync_to_thread=False)


async def service_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: only the service key passes (the internal routes); 401 otherwise."""
    _verifier(connection.app.state).verify_service(bearer_token(connection.headers.get("authorization")))


async def sample_backlog_admits(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of `POST /api/v1/voice-samples`: 503 `backlog_full` while the sample queue (`voice_sample_process`)
    holds more work than VOICEGATE_UPLOAD_BACKLOG_SECONDS, before the upload is read."""
    admission: QueueAdmission = connection.app.state.sample_backlog
    await admission.admit()


async def clone_backlog_admits(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of a reflection's clone upload: as `sample_backlog_admits`, for the clone queue that checks it."""
    admission: QueueAdmission = connection.app.state.clone_backlog
    await admission.admit()


# Injected by name; the values are this process's own objects, so Litestar need not validate them.
Caller = NamedDependency[SkipValidation[UserClaims]]
"""`claims`: the verified caller."""
Db = NamedDependency[SkipValidation[Database]]
"""`db`: the database, as its units of work (`backend.db.units.Database`)."""
StorageReadiness = NamedDependency[SkipValidation[StorageProbe]]
"""`storage_probe`: whether Storage answers, as /readyz asks it."""
WorkerContextDep = NamedDependency[SkipValidation[WorkerContext]]
"""`worker_context`: what the worker steps need."""
StreamSlots = NamedDependency[SkipValidation[UserConcurrency]]
"""`stream_slots`: the speech streams each user has open (VOICEGATE_USER_STREAMS)."""
Attempts = NamedDependency[SkipValidation[AttemptsService]]
"""`attempts`: clone attempts as their owners read them."""
Consents = NamedDependency[SkipValidation[ConsentsService]]
"""`consents`: the spoken consents' use cases."""
Provenance = NamedDependency[SkipValidation[ProvenanceService]]
"""`provenance`: checking a file for the watermark and a C2PA manifest."""
Reflections = NamedDependency[SkipValidation[ReflectionsService]]
"""`reflections`: the reflections' use cases, their voice and sessions."""
Samples = NamedDependency[SkipValidation[SamplesService]]
"""`samples`: the voice samples' use cases."""
Speech = NamedDependency[SkipValidation[SpeechService]]
"""`speech`: the speech streams' use cases."""
Synthesis = NamedDependency[SkipValidation[SynthesisService]]
"""`synthesis`: the synthesis jobs' use cases, and a voice's clips."""
UsageArea = NamedDependency[SkipValidation[UsageService]]
"""`usage`: the caller's spend at the providers."""
Voices = NamedDependency[SkipValidation[VoicesService]]
"""`voices`: the voices' use cases, and the upload-then-finalize clone flow."""
Webhooks = NamedDependency[SkipValidation[WebhooksService]]
"""`webhooks`: the webhook endpoints' use cases."""
PathId = FromPath[uuid.UUID]
"""A resource's id in the route's path (`/{voice_id:uuid}`), by the parameter's name."""

#: The areas' services, by the name a handler injects each (`backend.compose.areas.Areas`' fields).
AREAS = (
    "attempts",
    "consents",
    "provenance",
    "reflections",
    "samples",
    "speech",
    "synthesis",
    "usage",
    "voices",
    "webhooks",
)

DEPENDENCIES = {
    "claims": Provide(provide_claims),
    **{name: _from_state(name) for name in ("db", "storage_probe", "worker_context", "stream_slots")},
    **{name: _from_state(name) for name in AREAS},
}
"""App-level dependencies, by the parameter name handlers use."""


def request_origin(request: Request[Any, Any, Any]) -> Origin:
    """Where a consent is given from: the client's user agent (kept with the consent, so refused if it
    holds a NUL) and address."""
    user_agent = request.headers.get("user-agent")
    refuse_nul("User-Agent header", user_agent)
    return Origin(user_agent, request.client.host if request.client else None)
