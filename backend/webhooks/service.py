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
from datetime import datetime
from pathlib import Path
from typing import Annotated, Final, Literal, get_args

import msgspec

from backend.auth.verify import UserClaims
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.fields import TRIMMED
from backend.records import user_creates
from backend.records.user_creates import CreateKind, UserLimits
from backend.standard_webhooks.sender import MAX_URL_LENGTH, WebhookSender
from backend.standard_webhooks.signing import new_secret

_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: Endpoints one user may have: enough for an app and its staging copy, too few to fan one event out widely.
MAX_ENDPOINTS: Final = 10

EventType = Literal[
    "sample.ready",
    "sample.failed",
    "voice.ready",
    "voice.failed",
    "synthesis.succeeded",
    "synthesis.failed",
    "synthesis.canceled",
    "reflection.launch_ready",
    "usage.threshold",
]
#: Every event voicegate sends (the SQL triggers name the same ones).
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)


class EndpointRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/webhooks`: where to deliver, and which events (default: all of them)."""

    url: Annotated[str, msgspec.Meta(min_length=8, max_length=MAX_URL_LENGTH, pattern=TRIMMED)]
    events: Annotated[list[EventType], msgspec.Meta(min_length=1, max_length=len(EVENT_TYPES))] | None = None


class Endpoint(msgspec.Struct, rename="camel", kw_only=True):
    """An endpoint as its owner sees it (never with its secret)."""

    id: uuid.UUID
    url: str
    events: list[str]
    created_at: datetime
    #: When it was disabled; nothing is delivered to a disabled endpoint.
    disabled_at: datetime | None
    #: Why: `gone`, its receiver answered 410 Gone; `failing`, every delivery to it failed for three days.
    disabled_reason: Literal["gone", "failing"] | None
    #: When its current run of failed deliveries began; null while its last delivery succeeded.
    failing_since: datetime | None


class CreatedEndpoint(Endpoint, kw_only=True):
    """`201` of `POST /v1/webhooks`: the endpoint and its signing secret, shown this once."""

    secret: str


class EndpointList(msgspec.Struct):
    """The caller's endpoints, newest first."""

    endpoints: list[Endpoint]


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
        """Delete the caller's endpoint and its secret; deliveries still queued for it are dropped."""
        async with self.db.service_transaction() as conn:
            row = await fetch_optional(
                conn, _Q["delete_endpoint"], {"id": endpoint_id, "owner_id": uuid.UUID(claims.sub)}
            )
        if row is None:
            raise NotFound("Webhook endpoint not found.")
