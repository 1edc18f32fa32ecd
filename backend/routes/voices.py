"""`/api/voices`: the caller's voices."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get
from litestar.params import FromPath

from backend.db.pool import service_transaction
from backend.domain import voices as svc
from backend.routes.context import current_user, pool_of, user_id, user_scope


class VoicesController(Controller):
    """List, read and soft-delete voices."""

    path = "/api/voices"
    tags = ("voices",)

    @get("/", summary="List the caller's voices")
    async def list_all(self, request: Request[Any, Any, Any]) -> svc.VoiceList:
        """The caller's voices with their provider metadata."""
        async with user_scope(request) as conn:
            return await svc.list_voices(conn)

    @get("/{voice_id:uuid}", summary="Get a voice")
    async def get_one(self, request: Request[Any, Any, Any], voice_id: FromPath[uuid.UUID]) -> svc.Voice:
        """One of the caller's voices (404 for anyone else's)."""
        async with user_scope(request) as conn:
            return await svc.get_voice(conn, voice_id)

    @delete("/{voice_id:uuid}", status_code=204, summary="Delete a voice (soft)")
    async def remove(self, request: Request[Any, Any, Any], voice_id: FromPath[uuid.UUID]) -> None:
        """Soft-delete one of the caller's voices; the provider's copy is left for operators."""
        claims = await current_user(request)
        async with service_transaction(pool_of(request)) as conn:
            await svc.soft_delete_voice(conn, voice_id, user_id(claims))
