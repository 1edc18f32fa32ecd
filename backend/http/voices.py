"""`/api/voices` (the caller's voices) and `/api/clone/...` (a signed upload URL for a consented draft
voice, then finalize: 202)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from backend.auth.verify import UserClaims
from backend.db.pool import Pool
from backend.fields import Rename
from backend.http.deps import Caller, Config, DbPool, PathId, Storage
from backend.http.docs import BY_ID, IDEMPOTENT, USER, USER_SECURITY, IdempotentOperation, problems, with_examples
from backend.http.idempotency import idempotent
from backend.http.sample_upload import request_origin
from backend.synthesis import history
from backend.voices import clone_flow, service


class VoicesController(Controller):
    """List, read and soft-delete voices."""

    path = "/api/voices"
    tags = ("voices",)
    security = USER_SECURITY

    @get("/", summary="List the caller's voices", responses=problems(*USER))
    async def list_all(self, claims: Caller, pool: DbPool) -> service.VoiceList:
        """The caller's voices with their provider metadata."""
        return await service.list_voices(pool, claims)

    @get("/{voice_id:uuid}", summary="Get a voice", responses=problems(*BY_ID))
    async def get_one(self, claims: Caller, pool: DbPool, voice_id: PathId) -> service.Voice:
        """One of the caller's voices (404 for anyone else's)."""
        return await service.get_voice(pool, claims, voice_id)

    @patch(
        "/{voice_id:uuid}",
        summary="Rename a voice",
        responses=problems(*BY_ID),
        operation_class=with_examples(a_name={"name": "My voice"}),
    )
    async def rename(self, claims: Caller, pool: DbPool, voice_id: PathId, data: JSONBody[Rename]) -> service.Voice:
        """`{name}`: 1-200 characters, not blank, no control characters; the voice as renamed."""
        return await service.rename_voice(pool, claims, voice_id, data)

    @get(
        "/{voice_id:uuid}/clips",
        summary="The voice's clips (synthesis jobs), newest first, a page at a time",
        responses=problems(*BY_ID),
    )
    async def clips(
        self,
        claims: Caller,
        pool: DbPool,
        voice_id: PathId,
        limit: Annotated[int, QueryParameter(ge=1, le=history.MAX_PAGE_SIZE)] = history.PAGE_SIZE,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> history.ClipPage:
        """Each clip's text, status, duration and dates; pass `nextCursor` back as `cursor` for the next page."""
        return await history.voice_clips(pool, claims, voice_id, limit=limit, cursor=cursor)

    @get(
        "/{voice_id:uuid}/preview",
        summary="A short-lived URL to hear the voice: its clone's preview, else its newest clip",
        responses=problems(*BY_ID, 409),
    )
    async def preview(self, claims: Caller, pool: DbPool, storage: Storage, voice_id: PathId) -> history.VoicePreview:
        """`{audioUrl, expiresIn, source}`; `audioUrl` is null while the voice has neither a preview nor a clip."""
        return await history.voice_preview(pool, storage, claims, voice_id)

    @delete("/{voice_id:uuid}", summary="Delete a voice (soft)", responses=problems(*BY_ID))
    async def remove(self, claims: Caller, pool: DbPool, storage: Storage, voice_id: PathId) -> None:
        """Soft-delete one of the caller's voices with its manifest and purge the samples kept for it; the
        provider's copy is left for operators."""
        await service.soft_delete_voice(pool, storage, claims, voice_id)


class CloneController(Controller):
    """Upload-then-finalize cloning."""

    path = "/api/clone"
    tags = ("clone",)
    security = USER_SECURITY

    @post(
        "/upload-url",
        summary="Signed upload URL for a new voice's sample",
        operation_class=with_examples(a_consented_voice={"name": "My voice", "consent": True, "language": "en"}),
        responses=problems(*USER, 400),
    )
    async def upload_url(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        pool: DbPool,
        storage: Storage,
        settings: Config,
        data: JSONBody[clone_flow.UploadUrlBody],
    ) -> clone_flow.UploadTicket:
        """Record consent and a draft voice; PUT the sample to `upload_url`, then finalize."""
        return await clone_flow.create_upload(
            pool, storage, claims, data, origin=request_origin(request), public_url=settings.storage_public_url
        )

    @post(
        "/finalize",
        status_code=202,
        summary="Check the uploaded sample and queue the clone",
        operation_class=with_examples(
            IdempotentOperation, the_uploaded_voice={"voice_id": "9c1ab5e2-7e0d-4f4a-8d36-5b2c0f3e4a11"}
        ),
        responses={
            200: ResponseSpec(service.Voice, description="With `Prefer: wait=N`: the voice once ready or failed."),
            **problems(*BY_ID, *IDEMPOTENT, 413, 415),
        },
    )
    async def finalize(
        self,
        request: Request[Any, Any, Any],
        claims: Caller,
        pool: DbPool,
        storage: Storage,
        settings: Config,
        data: JSONBody[clone_flow.FinalizeBody],
        prefer: Annotated[str | None, HeaderParameter(name="prefer")] = None,
    ) -> Response[Any]:
        """Verify the uploaded object (present, within limits, really audio) and queue the attempt.

        With an `Idempotency-Key`, a repeat of the same body replays the first 202. With
        `Prefer: wait=N` (N ≤ 60) it waits up to N s and answers 200 with the finished (ready or failed)
        voice, else the usual 202.
        """
        accepted = await idempotent(
            request,
            claims,
            lambda record: clone_flow.finalize(pool, storage, claims, data, settings=settings, record=record),
            body=msgspec.json.encode(data),
        )
        return await _wait_if_preferred(pool, claims, accepted, data.voice_id, prefer)


async def _wait_if_preferred(
    pool: Pool, claims: UserClaims, accepted: Response[Any], voice_id: uuid.UUID, prefer: str | None
) -> Response[Any]:
    """With `Prefer: wait=N` (N ≤ 60), wait up to N s for a queued finalize's voice and answer 200 with
    it once ready or failed; otherwise (no preference, a replayed or refused answer, or time up) the
    answer as it was."""
    wait = service.preferred_wait(prefer)
    if wait is None or accepted.status_code != HTTP_202_ACCEPTED:
        return accepted
    finished = await service.wait_for_voice(pool, claims.raw, voice_id, wait)
    if finished is None:
        return accepted
    return Response(finished, status_code=HTTP_200_OK, headers={"Preference-Applied": f"wait={wait}"})
