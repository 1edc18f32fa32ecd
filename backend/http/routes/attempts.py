"""Clone attempts over HTTP: `GET /api/v1/attempts/{id}` for their owner (every attempt, made with a reflection
or without one), and the route only the service key may call, which `CONSUMER_MODE=http` workers use."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import HeaderParameter

from backend.clone.step import NO_REFLECTION, process_reflection_attempt
from backend.context import Outcome
from backend.domain.attempts import Attempt
from backend.errors import ValidationFailed
from backend.http.deps import Attempts, Caller, PathId, WorkerContextDep, service_only
from backend.http.documents.openapi import BY_ID, USER_SECURITY, problems

_WORKER = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")


class AttemptsController(Controller):
    """The caller's clone attempts by id, in the shape the reflection routes give them."""

    path = "/api/v1/attempts"
    tags = ("attempts",)
    security = USER_SECURITY

    @get(
        "/{attempt_id:uuid}",
        summary="Get a clone attempt (any of the caller's, with or without a reflection)",
        responses=problems(*BY_ID),
    )
    async def get_one(self, claims: Caller, attempts: Attempts, attempt_id: PathId) -> Attempt:
        """One of the caller's attempts, by the attempt id that `/api/clone/finalize`, a reflection's clone or
        `POST /api/v1/clone` answered (404 for anyone else's)."""
        return await attempts.get_attempt(claims, attempt_id)


class InternalController(Controller):
    """Service-only routes, excluded from the public schema."""

    path = "/internal"
    tags = ("internal",)
    include_in_schema = False
    guards = [service_only]  # noqa: RUF012 - Litestar's own class attribute

    @post("/reflections/{reflection_id:uuid}/voice-clone-attempts/{attempt_id:uuid}/process", status_code=200)
    async def process(
        self,
        worker_context: WorkerContextDep,
        reflection_id: PathId,
        attempt_id: PathId,
        worker: Annotated[str | None, HeaderParameter(name="x-voicegate-worker")] = None,
    ) -> Outcome:
        """Take the attempt as far as it can go now (what a worker does in-process); returns where it is."""
        if worker and not _WORKER.match(worker):
            raise ValidationFailed("X-Voicegate-Worker must be 1-200 characters of [A-Za-z0-9._:@-].")
        reflection = None if reflection_id == NO_REFLECTION else reflection_id
        return await process_reflection_attempt(
            worker_context, reflection, attempt_id, worker or f"api:{uuid.uuid4().hex[:12]}"
        )
