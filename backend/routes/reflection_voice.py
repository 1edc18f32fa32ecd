"""`/v1/reflections/{id}/voice`: clone from an uploaded sample (multipart), or attach a voice the user
already has at a provider."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Body, FromPath

from backend.db.pool import user_transaction
from backend.domain import reflection_voice as svc
from backend.domain.clone import FinalizedClone
from backend.domain.reflections import Attempt, VoiceState, voice_state_with_preview
from backend.idempotency import idempotent
from backend.routes.clone import LanguageTag, Name
from backend.routes.context import current_user, pool_of, user_id
from backend.routes.sample_upload import ProviderName, sample_upload


class CustomVoiceBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `PATCH .../voice`: a voice the caller already has at a provider."""

    provider: ProviderName
    voice_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]
    name: Name | None = None
    language: LanguageTag | None = None


class ReflectionVoiceController(Controller):
    """Give a reflection its voice."""

    path = "/v1/reflections/{reflection_id:uuid}/voice"
    tags = ("reflections",)

    @get("/", summary="Voice state, launch readiness and the preview to listen to")
    async def state(self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID]) -> VoiceState:
        """The voice mirror with launch readiness, its blocking reasons and a signed preview URL."""
        claims = await current_user(request)
        async with user_transaction(pool_of(request), claims.raw) as conn:
            return await voice_state_with_preview(conn, request.app.state.storage, user_id(claims), reflection_id)

    @post(
        "/clone",
        status_code=202,
        # The upload reader enforces the sample limit itself, with its own message, while streaming.
        request_max_body_size=None,
        summary="Clone a voice from an uploaded sample (multipart: file, consent, language, transcript, provider)",
    )
    async def clone(
        self, request: Request[Any, Any, Any], reflection_id: FromPath[uuid.UUID]
    ) -> Response[FinalizedClone]:
        """Stream the sample to Storage and queue the reflection's clone attempt (consent required).

        With an `Idempotency-Key`, the same fields and file replay the first 202.
        """
        claims = await current_user(request)
        state, pool = request.app.state, pool_of(request)
        async with sample_upload(request) as received:
            return await idempotent(
                request,
                claims,
                lambda record: svc.clone_from_upload(
                    pool,
                    state.storage,
                    claims,
                    reflection_id,
                    form=received.form,
                    upload=received.upload,
                    providers=state.settings.providers,
                    retention_days=state.settings.sample_retention_days,
                    record=record,
                ),
                fingerprint=received.fingerprint,
            )

    @patch("/", status_code=202, summary="Attach a voice the caller already has at a provider")
    async def attach(
        self,
        request: Request[Any, Any, Any],
        reflection_id: FromPath[uuid.UUID],
        data: Annotated[CustomVoiceBody, Body()],
    ) -> Attempt:
        """Validate the voice at the provider, then queue a `custom_voice_id` attempt (no preview needed)."""
        claims = await current_user(request)
        state = request.app.state
        custom = svc.CustomVoice(provider=data.provider, voice_id=data.voice_id, name=data.name, language=data.language)
        return await svc.attach_custom_voice(
            pool_of(request),
            claims,
            reflection_id,
            custom,
            providers=state.lifecycle.providers,
            provider_settings=state.settings.providers,
        )
