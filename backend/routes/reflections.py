"""`/v1/reflections`: reflections, their voice state, attempts, preview completion and launch."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Body, FromPath

from backend.auth.verify import UserClaims
from backend.db.pool import service_transaction, user_transaction
from backend.domain import reflections as svc
from backend.idempotency import Recorder, idempotent
from backend.routes.context import current_user, pool_of, user_scope


class ReflectionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /v1/reflections`."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ReflectionList(msgspec.Struct):
    """The caller's reflections."""

    reflections: list[svc.Reflection]


class AttemptList(msgspec.Struct):
    """A reflection's attempts, newest first."""

    attempts: list[svc.Attempt]


class ReflectionsController(Controller):
    """Reflections and their voice lifecycle, scoped to the caller by RLS."""

    path = "/v1/reflections"
    tags = ("reflections",)

    @post("/", status_code=201, summary="Create a reflection")
    async def create(
        self, request: Request[Any, Any, Any], data: Annotated[ReflectionCreate, Body()]
    ) -> svc.Reflection:
        """Create a reflection owned by the caller."""
        async with user_scope(request) as conn:
            return await svc.create_reflection(conn, data.name.strip())

    @get("/", summary="List the caller's reflections")
    async def list_all(self, request: Request[Any, Any, Any]) -> ReflectionList:
        """The caller's reflections, newest first."""
        async with user_scope(request) as conn:
            return ReflectionList(await svc.list_reflections(conn))

    @get("/{reflection_id:uuid}", summary="Get a reflection")
    async def get_one(self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID]) -> svc.Reflection:
        """One of the caller's reflections (404 for anyone else's)."""
        async with user_scope(request) as conn:
            return await svc.get_reflection(conn, reflection_id)

    @get("/{reflection_id:uuid}/voice-clone-attempts", summary="List clone attempts")
    async def attempts(self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID]) -> AttemptList:
        """The reflection's clone attempts, newest first."""
        async with user_scope(request) as conn:
            return AttemptList(await svc.list_attempts(conn, reflection_id))

    @get("/{reflection_id:uuid}/voice-clone-attempts/{attempt_id:uuid}", summary="Get a clone attempt")
    async def attempt(
        self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID], attempt_id: FromPath[uuid.UUID]
    ) -> svc.Attempt:
        """One clone attempt of the reflection."""
        async with user_scope(request) as conn:
            return await svc.get_attempt(conn, reflection_id, attempt_id)

    @post("/{reflection_id:uuid}/voice/preview/complete", status_code=200, summary="Confirm the preview was heard")
    async def complete_preview(
        self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID]
    ) -> svc.Attempt:
        """Mark the active attempt's ready preview as completed; this opens the launch gate."""
        claims: UserClaims = await current_user(request)
        async with user_transaction(pool_of(request), claims.raw) as conn:
            attempt = await svc.active_attempt_row(conn, reflection_id)
        async with service_transaction(pool_of(request)) as service_conn:
            return await svc.complete_preview(service_conn, attempt, actor=f"user:{claims.sub}")

    @post("/{reflection_id:uuid}/voice/retry", status_code=202, summary="Retry a failed clone")
    async def retry(self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID]) -> Response[svc.Attempt]:
        """Queue a new attempt from the failed (or canceled) active one; the old one is superseded.

        With an `Idempotency-Key`, a repeat replays the first 202 instead of retrying again.
        """
        claims = await current_user(request)

        async def retry_clone(record: Recorder | None) -> svc.Attempt:
            async with user_transaction(pool_of(request), claims.raw) as conn:
                return await svc.retry_clone(conn, reflection_id, record)

        return await idempotent(request, claims, retry_clone)

    @post("/{reflection_id:uuid}/sessions", status_code=201, summary="Launch a session")
    async def launch(self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID]) -> svc.Session:
        """201 with the session, or 409 listing every reason the voice blocks the launch."""
        async with user_scope(request) as conn:
            return await svc.launch_session(conn, reflection_id)
