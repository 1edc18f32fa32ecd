"""Routes only the service key may call: what `CONSUMER_MODE=http` workers use."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from litestar import Controller, post
from litestar.params import HeaderParameter

from backend.clone.step import NO_REFLECTION, process_reflection_attempt
from backend.context import Outcome
from backend.errors import ValidationFailed
from backend.http.deps import LifecycleContext, PathId, service_only

_WORKER = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")


class InternalController(Controller):
    """Service-only routes, excluded from the public schema."""

    path = "/internal"
    tags = ("internal",)
    include_in_schema = False
    guards = [service_only]  # noqa: RUF012 - Litestar's own class attribute

    @post("/reflections/{reflection_id:uuid}/voice-clone-attempts/{attempt_id:uuid}/process", status_code=200)
    async def process(
        self,
        lifecycle: LifecycleContext,
        reflection_id: PathId,
        attempt_id: PathId,
        worker: Annotated[str | None, HeaderParameter(name="x-voicegate-worker")] = None,
    ) -> Outcome:
        """Take the attempt as far as it can go now (what a worker does in-process); returns where it is."""
        if worker and not _WORKER.match(worker):
            raise ValidationFailed("X-Voicegate-Worker must be 1-200 characters of [A-Za-z0-9._:@-].")
        reflection = None if reflection_id == NO_REFLECTION else reflection_id
        return await process_reflection_attempt(
            lifecycle, reflection, attempt_id, worker or f"api:{uuid.uuid4().hex[:12]}"
        )
