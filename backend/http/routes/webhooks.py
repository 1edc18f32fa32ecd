"""`/v1/webhooks`: the caller's webhook endpoints."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.params import JSONBody

from backend.http.deps import Caller, PathId, Webhooks
from backend.http.documents.openapi import BY_ID, CREATES, USER, USER_SECURITY, problems, with_examples
from backend.webhooks import types


class WebhooksController(Controller):
    """Create (the secret is shown once), list, read and delete webhook endpoints."""

    path = "/v1/webhooks"
    tags = ("webhooks",)
    security = USER_SECURITY

    @post(
        "/",
        summary="Add a webhook endpoint",
        operation_class=with_examples(
            voice_events={"url": "https://example.com/hooks/voicegate", "events": ["voice.ready", "voice.failed"]}
        ),
        responses=problems(*USER, 400, 409, 422, words=CREATES),
    )
    async def create(
        self, claims: Caller, webhooks: Webhooks, data: JSONBody[types.EndpointRequest]
    ) -> types.CreatedEndpoint:
        """Deliver the caller's events (`events`, default all) to `url`, signed as Standard Webhooks with
        the returned `secret`, which is shown only this once. https only (http to a loopback address in
        embedded mode); in production, addresses outside global unicast are refused (422 `webhook_url_refused`)."""
        return await webhooks.create_endpoint(claims, data)

    @get("/", summary="List the caller's webhook endpoints", responses=problems(*USER))
    async def list_all(self, claims: Caller, webhooks: Webhooks) -> types.EndpointList:
        """The caller's endpoints, without their secrets."""
        return await webhooks.list_endpoints(claims)

    @get("/{endpoint_id:uuid}", summary="Get a webhook endpoint", responses=problems(*BY_ID))
    async def get_one(self, claims: Caller, webhooks: Webhooks, endpoint_id: PathId) -> types.Endpoint:
        """One of the caller's endpoints (404 for anyone else's)."""
        return await webhooks.get_endpoint(claims, endpoint_id)

    @delete("/{endpoint_id:uuid}", summary="Delete a webhook endpoint", responses=problems(*BY_ID))
    async def remove(self, claims: Caller, webhooks: Webhooks, endpoint_id: PathId) -> None:
        """Delete one of the caller's endpoints; what was still queued for it is not delivered."""
        await webhooks.delete_endpoint(claims, endpoint_id)
