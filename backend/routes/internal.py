"""Routes only the service key may call: what `CONSUMER_MODE=http` workers use."""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Controller, Request, post
from litestar.params import FromPath

from backend.errors import ValidationFailed
from backend.lifecycle.context import Outcome
from backend.lifecycle.processing import process_reflection_attempt
from backend.routes.context import require_service

#: The reflection segment that stands for "no reflection" (an attempt made by finalize without one).
NO_REFLECTION = uuid.UUID(int=0)
_WORKER = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")


class InternalController(Controller):
    """Service-only routes, excluded from the public schema."""

    path = "/internal"
    tags = ("internal",)
    include_in_schema = False

    @post("/reflections/{reflection_id:uuid}/voice-clone-attempts/{attempt_id:uuid}/process", status_code=200)
    async def process(
        self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID], attempt_id: FromPath[uuid.UUID]
    ) -> Outcome:
        """Take the attempt as far as it can go now (what a worker does in-process); returns where it is."""
        await require_service(request)
        worker = request.headers.get("x-voicegate-worker") or f"api:{uuid.uuid4().hex[:12]}"
        if not _WORKER.match(worker):
            raise ValidationFailed("X-Voicegate-Worker must be 1-200 characters of [A-Za-z0-9._:@-].")
        reflection = None if reflection_id == NO_REFLECTION else reflection_id
        return await process_reflection_attempt(request.app.state.lifecycle, reflection, attempt_id, worker)
