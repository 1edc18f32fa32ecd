"""`/v1/reflections`: reflections, their voice (state, clone from an upload, attach a provider voice),
attempts, preview completion, retry and launch."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import JSONBody

from backend.body_limit import BODY_LIMIT
from backend.domain.attempts import Attempt
from backend.fields import Name
from backend.http.deps import Caller, PathId, Reflections, clone_backlog_admits
from backend.http.documents.openapi import (
    BACKLOG,
    BY_ID,
    CREATES,
    IDEMPOTENT,
    USER,
    USER_SECURITY,
    VOICE,
    IdempotentOperation,
    SampleUploadOperation,
    problems,
    with_examples,
)
from backend.http.forms import UPLOAD_BYTES
from backend.http.idempotency import idempotent
from backend.http.routes.samples import idempotent_upload
from backend.reflections import types


class ReflectionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /v1/reflections`."""

    name: Name


class ReflectionList(msgspec.Struct):
    """The caller's reflections."""

    reflections: list[types.Reflection]


class AttemptList(msgspec.Struct):
    """A reflection's attempts, newest first."""

    attempts: list[Attempt]


class ReflectionsController(Controller):
    """Reflections and their voice lifecycle, scoped to the caller by RLS."""

    path = "/v1/reflections"
    tags = ("reflections",)
    security = USER_SECURITY

    @post(
        "/",
        summary="Create a reflection",
        operation_class=with_examples(a_name={"name": "Ada"}),
        responses=problems(*USER, 400, words=CREATES),
    )
    async def create(
        self, claims: Caller, reflections: Reflections, data: JSONBody[ReflectionCreate]
    ) -> types.Reflection:
        """Create a reflection owned by the caller."""
        return await reflections.create_reflection(claims, data.name.strip())

    @get("/", summary="List the caller's reflections", responses=problems(*USER))
    async def list_all(self, claims: Caller, reflections: Reflections) -> ReflectionList:
        """The caller's reflections, newest first."""
        return ReflectionList(await reflections.list_reflections(claims))

    @get("/{reflection_id:uuid}", summary="Get a reflection", responses=problems(*BY_ID))
    async def get_one(self, claims: Caller, reflections: Reflections, reflection_id: PathId) -> types.Reflection:
        """One of the caller's reflections (404 for anyone else's)."""
        return await reflections.get_reflection(claims, reflection_id)

    @get("/{reflection_id:uuid}/voice-clone-attempts", summary="List clone attempts", responses=problems(*BY_ID))
    async def attempts(self, claims: Caller, reflections: Reflections, reflection_id: PathId) -> AttemptList:
        """The reflection's clone attempts, newest first."""
        return AttemptList(await reflections.list_attempts(claims, reflection_id))

    @get(
        "/{reflection_id:uuid}/voice-clone-attempts/{attempt_id:uuid}",
        summary="Get a clone attempt",
        responses=problems(*BY_ID),
    )
    async def attempt(
        self, claims: Caller, reflections: Reflections, reflection_id: PathId, attempt_id: PathId
    ) -> Attempt:
        """One clone attempt of the reflection."""
        return await reflections.get_attempt(claims, reflection_id, attempt_id)

    @post(
        "/{reflection_id:uuid}/voice/preview/complete",
        status_code=200,
        summary="Confirm the preview was heard (once the voice state says `previewStatus: ready`)",
        responses=problems(*BY_ID, 409),
    )
    async def complete_preview(self, claims: Caller, reflections: Reflections, reflection_id: PathId) -> Attempt:
        """Mark the active attempt's ready preview as completed; this opens the launch gate."""
        return await reflections.complete_preview(claims, reflection_id)

    @post(
        "/{reflection_id:uuid}/voice/retry",
        status_code=202,
        summary="Retry a failed clone",
        operation_class=IdempotentOperation,
        responses=problems(*BY_ID, *IDEMPOTENT),
    )
    async def retry(
        self, request: Request[Any, Any, Any], claims: Caller, reflections: Reflections, reflection_id: PathId
    ) -> Response[Attempt]:
        """Queue a new attempt from the failed (or canceled) active one; the old one is superseded.

        With an `Idempotency-Key`, a repeat replays the first 202 instead of retrying again.
        """
        return await idempotent(request, claims, lambda record: reflections.retry_clone(claims, reflection_id, record))

    @post("/{reflection_id:uuid}/sessions", summary="Launch a session", responses=problems(*BY_ID, 409))
    async def launch(self, claims: Caller, reflections: Reflections, reflection_id: PathId) -> types.Session:
        """201 with the session and what a runtime needs to speak in the voice (`runtime`), or 409 listing
        every reason the voice blocks the launch."""
        return await reflections.launch_session(claims, reflection_id)

    @get(
        "/{reflection_id:uuid}/voice",
        summary="Voice state, launch readiness and the preview to listen to",
        responses=problems(*BY_ID),
    )
    async def state(self, claims: Caller, reflections: Reflections, reflection_id: PathId) -> types.VoiceState:
        """The voice mirror with launch readiness, its blocking reasons and a signed preview URL."""
        return await reflections.voice_state(claims, reflection_id)

    @post(
        "/{reflection_id:uuid}/voice/clone",
        status_code=202,
        # The upload reader enforces the sample limit itself, with its own message, while streaming.
        request_max_body_size=None,
        opt={BODY_LIMIT: UPLOAD_BYTES},
        summary="Clone a voice from an uploaded sample (multipart: file and consent, the rest optional)",
        operation_class=SampleUploadOperation,
        guards=[clone_backlog_admits],
        responses=problems(*BY_ID, *IDEMPOTENT, 413, 415, words={**VOICE, **BACKLOG}),
    )
    async def clone(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        reflections: Reflections,
        reflection_id: PathId,
    ) -> Response[types.QueuedClone]:
        """Stream the sample to Storage and queue the reflection's clone attempt (consent required).

        With an `Idempotency-Key`, the same fields and file replay the first 202.
        """
        return await idempotent_upload(request, claims, partial(reflections.clone_from_upload, claims, reflection_id))

    @patch(
        "/{reflection_id:uuid}/voice",
        status_code=202,
        summary="Attach a voice the caller already has at a provider",
        operation_class=with_examples(
            a_provider_voice={"provider": "elevenlabs", "voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel"}
        ),
        responses=problems(*BY_ID, 409, 422, words=VOICE),
    )
    async def attach(
        self,
        claims: Caller,
        reflections: Reflections,
        reflection_id: PathId,
        data: JSONBody[types.CustomVoice],
    ) -> Attempt:
        """Validate the voice at the provider, then queue a `custom_voice_id` attempt (no preview needed)."""
        return await reflections.attach_custom_voice(claims, reflection_id, data)


class SessionsController(Controller):
    """Launched sessions: what a runtime needs to speak in the reflection's voice, from the session id."""

    path = "/v1/sessions"
    tags = ("reflections",)
    security = USER_SECURITY

    @get("/{session_id:uuid}", summary="A session and how a runtime speaks in its voice", responses=problems(*BY_ID))
    async def get_one(self, claims: Caller, reflections: Reflections, session_id: PathId) -> types.Session:
        """The session, whether its reflection may speak now (`launchReady`, `blockingReasons`), and `runtime`:
        the voice, its provider and model, and the speech route."""
        return await reflections.get_session(claims, session_id)
