"""`/api/clone/...`: a signed upload URL for a consented draft voice, then finalize (202)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.params import Body
from litestar.status_codes import HTTP_202_ACCEPTED

from backend.domain import clone as svc
from backend.domain import voices
from backend.idempotency import idempotent
from backend.routes.context import current_user, pool_of

LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LanguageTag = Annotated[str, msgspec.Meta(pattern=LANGUAGE, max_length=35)]


class UploadUrlBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/clone/upload-url`."""

    name: Name
    consent: bool = False
    language: LanguageTag | None = None
    subject_name: Name | None = None


class FinalizeBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/clone/finalize`."""

    voice_id: uuid.UUID
    name: Name | None = None
    language: LanguageTag | None = None
    transcript: Annotated[str, msgspec.Meta(min_length=1, max_length=5000)] | None = None
    provider: Literal["local", "qwen", "elevenlabs", "cartesia"] | None = None
    reflection_id: uuid.UUID | None = None


class CloneController(Controller):
    """Upload-then-finalize cloning."""

    path = "/api/clone"
    tags = ("clone",)

    @post("/upload-url", status_code=201, summary="Signed upload URL for a new voice's sample")
    async def upload_url(
        self, request: Request[Any, Any, Any], data: Annotated[UploadUrlBody, Body()]
    ) -> svc.UploadTicket:
        """Record consent and a draft voice; PUT the sample to `upload_url`, then finalize."""
        claims = await current_user(request)
        client = request.client.host if request.client else None
        upload = svc.UploadRequest(
            data.name.strip(),
            data.consent,
            data.language,
            data.subject_name,
            request.headers.get("user-agent"),
            client,
        )
        state = request.app.state
        return await svc.create_upload(
            pool_of(request), state.storage, claims, upload, state.settings.storage_public_url
        )

    @post("/finalize", status_code=202, summary="Check the uploaded sample and queue the clone")
    async def finalize(self, request: Request[Any, Any, Any], data: Annotated[FinalizeBody, Body()]) -> Response[Any]:
        """Verify the uploaded object (present, within limits, really audio) and queue the attempt.

        With an `Idempotency-Key`, a repeat of the same body replays the first 202. With
        `Prefer: wait=N` (N ≤ 60) it waits up to N s and answers 200 with the finished (ready or failed)
        voice, else the usual 202.
        """
        claims = await current_user(request)
        body = svc.FinalizeRequest(
            data.voice_id,
            data.name.strip() if data.name else None,
            data.language,
            data.transcript,
            data.provider,
            data.reflection_id,
        )
        pool, state = pool_of(request), request.app.state
        accepted = await idempotent(
            request,
            claims,
            lambda record: svc.finalize(
                pool,
                state.storage,
                claims,
                body,
                providers=state.settings.providers,
                retention_days=state.settings.sample_retention_days,
                record=record,
            ),
            body=msgspec.json.encode(data),
        )
        wait = voices.preferred_wait(request.headers.get("prefer"))
        if wait is None or accepted.status_code != HTTP_202_ACCEPTED:
            return accepted
        finished = await voices.wait_for_voice(pool, claims.raw, data.voice_id, wait)
        if finished is None:
            return accepted
        return Response(finished, status_code=200, headers={"Preference-Applied": f"wait={wait}"})
