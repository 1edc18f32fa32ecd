"""What the `/api/v1/webhooks` routes take and answer: an endpoint with the events it subscribes to (`EVENT_TYPES`),
its secret once, when it is created, and a list of them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, Literal, get_args

import msgspec

from backend.fields import TRIMMED
from backend.standard_webhooks.sender import MAX_URL_LENGTH

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


class EndpointList(msgspec.Struct):
    """The caller's endpoints, newest first."""

    endpoints: list[Endpoint]


class CreatedEndpoint(Endpoint, kw_only=True):
    """`201` of `POST /v1/webhooks`: the endpoint and its signing secret, shown this once."""

    secret: str
