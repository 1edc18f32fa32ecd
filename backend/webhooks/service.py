"""A user's webhook endpoints (`/v1/webhooks`): create one (its secret is shown once), list, read, delete.

An endpoint receives only its owner's events, of the types it chose (all of them by default). Its URL is
checked when it is made (https, and in production a public address: see `backend.standard_webhooks.sender`),
and again before each delivery. The secret is generated here and stored apart from the endpoint
(`voicegate.webhook_secrets`), where only the service reads it; no response but the creating one carries
it, and nothing logs it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from backend.auth.verify import UserClaims
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.domain.limits import UserLimits
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.records import owners, user_creates
from backend.records.user_creates import CreateKind
from backend.standard_webhooks.sender import WebhookSender
from backend.standard_webhooks.signing import new_secret
from backend.webhooks.types import EVENT_TYPES, CreatedEndpoint, Endpoint, EndpointList, EndpointRequest, EventType

_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: Endpoints one user may have: enough for an app and its staging copy, too few to fan one event out widely.
MAX_ENDPOINTS: Final = 10


def _events(requested: list[EventType] | None) -> list[str]:
    if requested is None:
        return list(EVENT_TYPES)
    if len(set(requested)) != len(requested):
        raise ValidationFailed("events must not repeat an event type")
    return [event for event in EVENT_TYPES if event in requested]


@dataclass(frozen=True)
class WebhooksService:
    """A user's webhook endpoints: their use cases over the database and the sender that checks an endpoint's
    address (the lifecycle's, which delivers to it after)."""

    db: Database
    sender: WebhookSender
    limits: UserLimits

    async def create_endpoint(self, claims: UserClaims, request: EndpointRequest) -> CreatedEndpoint:
        """Check the URL, then store the endpoint and its new secret together; 409 past `MAX_ENDPOINTS`, 429
        `creates_limited` past the caller's creates."""
        events = _events(request.events)
        await self.sender.check(request.url)
        secret = new_secret()
        owner_id = uuid.UUID(claims.sub)
        async with self.db.service_transaction() as conn:
            # Counted under the caller's lock on their endpoint creates, so creates at once cannot pass the cap.
            await user_creates.take(conn, owner_id, CreateKind.WEBHOOK_ENDPOINT, self.limits)
            row = await fetch_optional(
                conn,
                _Q["insert_endpoint"],
                {"owner_id": owner_id, "url": request.url, "events": events, "max_endpoints": MAX_ENDPOINTS},
            )
            if row is None:
                raise Conflict(f"You have {MAX_ENDPOINTS} webhook endpoints already; delete one first.")
            await conn.execute(_Q["insert_secret"], {"endpoint_id": row["id"], "secret": secret})
        return CreatedEndpoint(**row, secret=secret)

    async def list_endpoints(self, claims: UserClaims) -> EndpointList:
        """The caller's endpoints (RLS shows only their own)."""
        async with self.db.user_statement(claims.raw) as conn:
            rows = await fetch_all(conn, _Q["list_own"], {"limit": MAX_ENDPOINTS * 2})
        return EndpointList([Endpoint(**row) for row in rows])

    async def get_endpoint(self, claims: UserClaims, endpoint_id: uuid.UUID) -> Endpoint:
        """One of the caller's endpoints; anyone else's is as missing as one that does not exist."""
        async with self.db.user_statement(claims.raw) as conn:
            row = await fetch_optional(conn, _Q["get_own"], {"id": endpoint_id})
        if row is None:
            raise NotFound("Webhook endpoint not found.")
        return Endpoint(**row)

    async def delete_endpoint(self, claims: UserClaims, endpoint_id: uuid.UUID) -> None:
        """Delete the caller's endpoint and its secret; deliveries still queued for it are dropped. A removed
        user's endpoints went with them: their account is checked first (401, not 404)."""
        owner_id = uuid.UUID(claims.sub)
        async with self.db.service_pipeline() as conn:
            await owners.require_owner(conn, owner_id)
            row = await fetch_optional(conn, _Q["delete_endpoint"], {"id": endpoint_id, "owner_id": owner_id})
        if row is None:
            raise NotFound("Webhook endpoint not found.")
