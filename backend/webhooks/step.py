"""`webhook_delivery`: post one event to one endpoint, signed as Standard Webhooks asks.

A delivery succeeds on a 2xx answer. Anything else (another status, a redirect, a timeout, a refused
connection, an address production may not reach) raises `DeliveryFailed`: the consumer makes the
message visible again after a jittered, doubling backoff and dead-letters it after the last attempt
(VOICEGATE_WEBHOOK_MAX_ATTEMPTS); `voicegate ops replay-dead-letters` sends it again. Each attempt is
signed with its own `webhook-timestamp`, so a late retry still passes a receiver's five-minute window,
and every attempt and replay carries the event's one `webhook-id`. A receiver answering 410 Gone asks
for no more: its endpoint is disabled, as is one whose deliveries have all failed for `DISABLE_AFTER_HOURS`.
An endpoint deleted or disabled meanwhile gets nothing.
Deliveries are read in turn by user, each user's in the order they became due (`read_in_turn`), so retries do not
go first and one user's backlog does not stand before another's events; a user holds at most a share of a
consumer's slots, and one whose receivers hang two of them (`DeliveryShares`).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import msgspec

from backend import queues
from backend.context import Outcome, WorkerContext
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.errors import WebhookUrlRefused, WorkFailed, WorkPutOff
from backend.secret import Secret
from backend.settings import DEFAULT_WEBHOOK_PENDING
from backend.standard_webhooks.sender import Destination

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: The longest wait between two attempts, however many came before.
RETRY_MAX_SECONDS: Final = 6 * 3600.0
GONE: Final = 410
#: A user's endpoint whose deliveries have all failed for this long is disabled: three days of a receiver's
#: outage, past the day (VOICEGATE_WEBHOOK_MAX_ATTEMPTS) that any one delivery is retried for.
DISABLE_AFTER_HOURS: Final = 72
#: The audit event of an endpoint disabled for failing that long.
DISABLED_AUDIT: Final = "webhook.endpoint_disabled"
#: A delivery slower than this marks its user's receivers slow: a receiver answers in well under a second.
SLOW_AFTER_S: Final = 2.0
#: Slots of one consumer a slow user's deliveries may hold at once (of VOICEGATE_WORKER_CONCURRENCY, 8).
SLOW_USER_SLOTS: Final = 2
#: How long a user stays slow after their last slow delivery.
SLOW_FOR_S: Final = 60.0
#: How long a slow user's delivery is put off when their slots are in use: about one attempt that hangs, so
#: it comes back about as a slot frees, spread so that a backlog does not come back at once.
PUT_OFF_S: Final = (10.0, 20.0)
#: Past this many users remembered as slow, those no longer slow are forgotten.
_SLOW_KEPT: Final = 1000


class DeliveryFailed(WorkFailed):
    """This attempt failed; the consumer retries it later and logs this message, one line. It names the
    endpoint and the status or reason, never the URL (a URL may carry a token in its query) or secret."""


class Delivery(msgspec.Struct, rename="camel", kw_only=True):
    """A `webhook_delivery` message, as the SQL triggers write it."""

    webhook_id: str
    endpoint_id: uuid.UUID | None
    type: str
    timestamp: str
    data: dict[str, Any]

    def body(self) -> bytes:
        """The payload (`type`, `timestamp`, `data`), minified: the bytes that are signed and sent."""
        return msgspec.json.encode({"type": self.type, "timestamp": self.timestamp, "data": self.data})


async def read_in_turn(
    conn: Connection, vt: int, qty: int, *, turns: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The webhook queue's reader: up to `qty` deliveries, invisible for `vt` seconds, in turn by their owners
    and each owner's in the order they became due, so that a retry waits behind every delivery due before it
    rather than going first for its older id, as pgmq's read would have it, and one user's due deliveries, however
    many, never stand before another user's first. `turns`: what the consumer holds of each owner's, and their
    shares (`DeliveryShares.turns`); without it, no owner is held to a share."""
    shares = turns or {"held": "{}", "caps": "{}", "share": qty}
    return await fetch_all(conn, _Q["read_in_turn"], {"vt": vt, "qty": qty, **shares})


class DeliveryShares:
    """How many of a consumer's slots each user's deliveries hold. A user none of whose deliveries has been slow
    lately takes what comes; once one of theirs took more than `SLOW_AFTER_S` (a receiver that hangs holds a
    slot for up to 20 s an attempt), they hold at most `SLOW_USER_SLOTS` at once for `SLOW_FOR_S`, and their
    other deliveries are put off (`WorkPutOff`), so that the consumer's other slots stay for other users."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: Each user's deliveries in hand: when each started.
        self._in_hand: dict[str, list[float]] = {}
        #: Until when each user counts as slow.
        self._slow_until: dict[str, float] = {}

    def take(self, owner: str) -> float | None:
        """A slot for one of `owner`'s deliveries: when it started, to give back; None when it must wait."""
        now = self._clock()
        hands = self._in_hand.setdefault(owner, [])
        slow = self._slow_until.get(owner, -math.inf) > now or any(now - t > SLOW_AFTER_S for t in hands)
        if slow and len(hands) >= SLOW_USER_SLOTS:
            return None
        hands.append(now)
        return now

    def turns(self, share: int) -> dict[str, Any]:
        """The reader's parameters (`read_in_turn`): each user's deliveries in hand, `share` the most one user's may
        hold, and a slow user's own (`SLOW_USER_SLOTS`), so that what they may not take now is not read at all."""
        now = self._clock()
        slow = {owner for owner, until in self._slow_until.items() if until > now}
        slow |= {owner for owner, hands in self._in_hand.items() if any(now - t > SLOW_AFTER_S for t in hands)}
        held = {owner: len(hands) for owner, hands in self._in_hand.items()}
        return {
            "held": json.dumps(held),
            "share": share,
            "caps": json.dumps(dict.fromkeys(slow, SLOW_USER_SLOTS)),
        }

    def give_back(self, owner: str, started: float) -> None:
        """The delivery that took its slot at `started` is over."""
        now = self._clock()
        hands = self._in_hand.get(owner, [])
        if started in hands:
            hands.remove(started)
        if not hands:
            self._in_hand.pop(owner, None)
        if now - started > SLOW_AFTER_S:
            self._slow_until[owner] = now + SLOW_FOR_S
        elif len(self._slow_until) > _SLOW_KEPT:
            self._slow_until = {who: until for who, until in self._slow_until.items() if until > now}


def delivery_handler(ctx: WorkerContext, shares: DeliveryShares | None = None) -> queues.Handler:
    """The webhook queue's handler: one delivery attempt of each message (`process_delivery`), a user's
    deliveries held to their share of the consumer's slots while their receivers are slow (`shares`, which
    `reader` reads by)."""
    shares = shares or DeliveryShares()

    async def handle(message: queues.Message) -> datetime | None:
        owner = message.message.get("data", {}).get("ownerId")
        if message.message.get("endpointId") is None or not isinstance(owner, str):
            # The project's endpoint is the operator's: it gets every user's events, as fast as it answers.
            return (await process_delivery(ctx, message.message)).retry_at
        started = shares.take(owner)
        if started is None:
            seconds = random.uniform(*PUT_OFF_S)  # noqa: S311 - spreading retries, not security
            raise WorkPutOff(f"user {owner}'s receivers are slow and hold their share of this worker", seconds)
        try:
            return (await process_delivery(ctx, message.message)).retry_at
        finally:
            shares.give_back(owner, started)

    return handle


def reader(shares: DeliveryShares, slots: int) -> queues.Reader:
    """The webhook queue's reader for a consumer of `slots` whose handler holds users to `shares`: in turn by user
    (`read_in_turn`), one user's deliveries at most a share of the slots (`queues.Turns`), two while their receivers
    are slow; the rest of theirs stay unread until they hold fewer."""
    share = queues.Turns(slots).share

    async def read(conn: Connection, vt: int, qty: int) -> list[dict[str, Any]]:
        return await read_in_turn(conn, vt, qty, turns=shares.turns(share))

    return read


async def process_delivery(ctx: WorkerContext, message: dict[str, Any]) -> Outcome:
    """Make one delivery attempt of a `webhook_delivery` message (DeliveryFailed when it fails)."""
    delivery = msgspec.convert(message, Delivery)
    name = "project endpoint" if delivery.endpoint_id is None else f"endpoint {delivery.endpoint_id}"
    found = await _target(ctx, delivery.endpoint_id)
    if found is None:
        return Outcome(status="no_endpoint")
    target, failing = found
    try:
        status = await _attempt(ctx, target, delivery, name)
    except DeliveryFailed:
        await _failed(ctx, delivery.endpoint_id)
        raise
    if status == GONE:
        await _disable(ctx, delivery.endpoint_id)
        log.warning("webhook %s: %s answered 410 Gone; it gets no more deliveries", delivery.webhook_id, name)
        return Outcome(status="gone")
    if failing and delivery.endpoint_id is not None:
        async with ctx.db.service_transaction() as conn:
            await conn.execute(_Q["delivered"], {"id": delivery.endpoint_id})
    log.info("webhook %s (%s) delivered to %s", delivery.webhook_id, delivery.type, name)
    return Outcome(status="delivered")


async def _attempt(ctx: WorkerContext, target: Destination, delivery: Delivery, name: str) -> int:
    """Post the delivery: its 2xx or 410 status, or DeliveryFailed."""
    try:
        status = await ctx.webhooks.post(target, delivery.webhook_id, delivery.body(), int(time.time()))
    except WebhookUrlRefused as exc:
        raise DeliveryFailed(f"{name}: {exc.detail}") from exc
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{name} ({_host(target.url)}): {type(exc).__name__}") from exc
    except TimeoutError as exc:
        raise DeliveryFailed(f"{name} ({_host(target.url)}): no answer in time") from exc
    if not 200 <= status < 300 and status != GONE:
        raise DeliveryFailed(f"{name} ({_host(target.url)}): HTTP {status}")
    return status


async def declare_project_endpoint(
    conn: Connection, *, configured: bool, pending: int = DEFAULT_WEBHOOK_PENDING
) -> None:
    """Tell the database whether the project has an endpoint (VOICEGATE_WEBHOOK_URL), and how many deliveries
    a user's endpoint may hold (VOICEGATE_WEBHOOK_PENDING), on the caller's transaction: without an endpoint,
    events queue no message for it; past `pending`, an endpoint's oldest deliveries are dead-lettered as a new
    one is queued (voicegate.emit_webhook)."""
    await conn.execute(_Q["declare_project_endpoint"], {"configured": configured, "pending": pending})


async def _target(ctx: WorkerContext, endpoint_id: uuid.UUID | None) -> tuple[Destination, bool] | None:
    """The project's endpoint, or the user's endpoint with its secret, and whether it is in a run of failures;
    None when there is none (any more)."""
    if endpoint_id is None:
        return None if ctx.webhooks.project is None else (ctx.webhooks.project, False)
    async with ctx.db.service_transaction() as conn:
        row = await fetch_optional(conn, _Q["endpoint"], {"id": endpoint_id})
    if row is None or row["disabled_at"] is not None:
        return None
    return Destination(row["url"], Secret(row["secret"])), row["failing_since"] is not None


async def _disable(ctx: WorkerContext, endpoint_id: uuid.UUID | None) -> None:
    if endpoint_id is None:
        return  # the project's endpoint is configuration: an operator changes VOICEGATE_WEBHOOK_URL
    async with ctx.db.service_transaction() as conn:
        await conn.execute(_Q["disable_endpoint"], {"id": endpoint_id})


async def _failed(ctx: WorkerContext, endpoint_id: uuid.UUID | None) -> None:
    """Count a failed delivery in the endpoint's run of failures; past `DISABLE_AFTER_HOURS` of them, disable
    it, with an audit event (its owner sees `disabledReason: failing`)."""
    if endpoint_id is None:
        return
    async with ctx.db.service_transaction() as conn:
        row = await fetch_optional(conn, _Q["failed"], {"id": endpoint_id, "hours": DISABLE_AFTER_HOURS})
        if row is None:
            return
        detail = {"ownerId": row["owner_id"], "failingSince": row["failing_since"], "hours": DISABLE_AFTER_HOURS}
        await record_audit(conn, "worker", DISABLED_AUDIT, "webhook_endpoint", endpoint_id, detail=detail)
    log.warning(
        "webhook endpoint %s has failed every delivery since %s, over %d h: it is disabled",
        endpoint_id,
        row["failing_since"].isoformat(timespec="seconds"),
        DISABLE_AFTER_HOURS,
    )


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"
