"""`GET /api/v1/usage`: what the caller has spent at the voice providers this window, against their quota."""

from __future__ import annotations

from litestar import Controller, get

from backend.http.deps import Caller, UsageArea
from backend.http.documents.openapi import USER, USER_SECURITY, problems
from backend.usage.types import Usage


class UsageController(Controller):
    """The caller's own spend."""

    path = "/api/v1/usage"
    tags = ("usage",)
    security = USER_SECURITY

    @get(
        "/",
        summary="Your characters and audio seconds this window, your quota and when it resets",
        responses=problems(*USER),
    )
    async def own(self, claims: Caller, usage: UsageArea) -> Usage:
        """Characters sent and audio seconds returned, by provider and kind, since the window began; the quota
        (VOICEGATE_USER_CHARACTERS per VOICEGATE_USER_USAGE_WINDOW), what is left and when it resets."""
        return await usage.own_usage(claims)
