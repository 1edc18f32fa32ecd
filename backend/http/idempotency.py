"""`Idempotency-Key` on the create routes: the same key with the same request replays the first
response; with a different request it is a 422; while the first is still running, a 409.

A key is scoped to its user and route (method, route template and path parameters). It is claimed
`in_flight` in a committed transaction of its own, so a concurrent duplicate sees the claim; the
service then marks it `completed` with the response inside the transaction that makes its write,
so the key and the write commit together or not at all. When the service raises (a 503 for a database
or Storage that is down, say), the claim is released at once and the client may retry with the same
key. A claim whose process died is reclaimable once it is older than `LEASE`; a key expires after `TTL`.

A release that cannot reach the database, or a claim a hung server may still commit, is kept by the process
(`IdempotencyKeys`): it retries the release every `RELEASE_RETRY_SECONDS`, and until the claim's lease ends
a retry with the key that reaches this process takes over the failed request's claim at once (that request
can no longer complete the key; had its write committed after all, the key is `completed` and replayed).

A route applies it in one call::

    return await idempotent(request, claims, lambda record: svc.create(..., record=record), body=...)

where the service calls `await record(conn, result)` (a `backend.db.units.Recorder`: the `Claim` is one) on
its open transaction just before it commits. A service that stores objects before its rows commit (a sample
upload) names them by the claim's `resource_id`; a retry that takes over a dead try's claim learns their id
(`abandoned_resource_id`) and removes them, as nothing else will ever claim them.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.serialization import default_serializer, encode_json

from backend.auth.verify import UserClaims
from backend.db.connection import Connection
from backend.db.units import Database, become_service
from backend.errors import (
    DatabaseUnavailable,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    ServerBusy,
)
from backend.records import idempotency_keys as keys
from backend.records.idempotency_keys import HeldKey

log = logging.getLogger(__name__)
KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
#: How long a claim may stay in flight before another request may take it over.
LEASE = timedelta(seconds=60)
#: How long a key is remembered.
TTL = timedelta(hours=24)
# Printable ASCII, 1 to 255 characters.
_VALID_KEY = re.compile(r"[ -~]{1,255}")
# Claiming only loops when the row it conflicted with is deleted in between; that cannot go on.
_CLAIM_ROUNDS = 3
# A release is retried until it goes through (see the module docstring), so a request failing because
# the database is slow does not wait long for it.
_RELEASE_SECONDS = 0.25
#: How often a process retries the releases that could not reach the database.
RELEASE_RETRY_SECONDS = 1.0

T = TypeVar("T")


def body_fingerprint(body: bytes) -> str:
    """The fingerprint of a request body: its sha256, hex."""
    return hashlib.sha256(body).hexdigest()


def idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    """The request's `Idempotency-Key`, None without one, InvalidIdempotencyKey when malformed."""
    values = request.headers.getall(KEY_HEADER, [])
    if not values:
        return None
    # Repeated field lines mean their comma-joined value (RFC 9110 §5.3), as a proxy may have sent it.
    key = ", ".join(values)
    if not _VALID_KEY.fullmatch(key):
        raise InvalidIdempotencyKey
    return key


def route_scope(request: Request[Any, Any, Any]) -> str:
    """Method, route template and path parameters: what a key is scoped to besides its user."""
    params = "&".join(f"{name}={value}" for name, value in sorted(request.path_params.items()))
    scope = f"{request.method} {request.scope['path_template']}"
    return f"{scope}?{params}" if params else scope


async def idempotent(
    request: Request[Any, Any, Any],
    claims: UserClaims,
    action: Callable[[Claim | None], Awaitable[T]],
    *,
    body: bytes = b"",
    fingerprint: str | None = None,
) -> Response[T]:
    """Run `action` at most once per `Idempotency-Key`, answering with the route's status code.

    The request is identified by `fingerprint` when given (say, a hash of multipart fields and the
    file's sha256), else by the sha256 of `body`. Without the header, `action(None)` simply runs.
    With it, `action` gets the request's Claim, a Recorder; a service that does not call it has its response
    recorded right after it returns instead, which is not atomic with its write.
    """
    status = _route_status(request)
    key = idempotency_key(request)
    if key is None:
        return Response(await action(None), status_code=status)
    keys: IdempotencyKeys = request.app.state.idempotency_keys
    claim = Claim(keys, uuid.UUID(claims.sub), route_scope(request), key, uuid.uuid4(), status)
    replayed = await claim.take(fingerprint or body_fingerprint(body))
    if replayed is not None:
        return _json_response(*replayed, headers={REPLAYED_HEADER: "true"})
    try:
        result = await action(claim)
        if not claim.response:
            async with claim.db.service_transaction() as conn:
                await claim.record(conn, result)
    except BaseException:
        # Also on cancellation: the client may retry at once instead of waiting out the lease.
        await claim.release()
        raise
    return _json_response(status, claim.response)


class IdempotencyKeys:
    """The keys of one app's requests in its database; and the claims of requests that failed here, whose
    release could not reach the database, until their lease ends (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._failed: dict[uuid.UUID, Claim] = {}
        self._retrying: asyncio.Task[None] | None = None

    def failed_here(self, token: uuid.UUID) -> bool:
        """Whether the claim with `token` is one of a request that failed in this process."""
        claim = self._failed.get(token)
        return claim is not None and not claim.lease_ended()

    def forget(self, token: uuid.UUID) -> None:
        """Stop releasing the claim with `token` (a retry took the key over)."""
        self._failed.pop(token, None)

    def release_later(self, claim: Claim) -> None:
        """Retry `claim`'s release until the database answers it, and know it as failed until its lease ends."""
        self._failed = {token: kept for token, kept in self._failed.items() if not kept.lease_ended()}
        self._failed[claim.token] = claim
        if self._retrying is None or self._retrying.done():
            # In a context of its own: not the failed request's, whose database budget is spent.
            self._retrying = asyncio.create_task(
                self._retry(), name="idempotency-releases", context=contextvars.Context()
            )

    async def _retry(self) -> None:
        # A claim stays known as failed after its release: had the hung server committed it only after
        # the release ran, a retry reaching this process could still take the key over.
        while waiting := [c for c in self._failed.values() if not c.released and not c.lease_ended()]:
            await asyncio.sleep(RELEASE_RETRY_SECONDS)
            for claim in waiting:
                if not await claim.try_release():
                    break  # the database is still out of reach: the rest wait for the next round

    async def aclose(self) -> None:
        """Stop retrying (the app is shutting down; the leases free what is left)."""
        if self._retrying is not None:
            self._retrying.cancel()
            with suppress(asyncio.CancelledError):
                await self._retrying


@dataclass
class Claim:
    """One request's hold on one key; called, it records the response (a Recorder)."""

    keys: IdempotencyKeys
    owner_id: uuid.UUID
    route: str
    key: str
    token: uuid.UUID
    status: int
    #: The recorded response's JSON (never empty once recorded).
    response: bytes = b""
    #: When (monotonic seconds) the key was claimed.
    claimed_at: float = field(default_factory=time.monotonic)
    #: Whether the database answered its release (it was not already completed, or taken over, then).
    released: bool = False
    #: The id the request names what it stores by (see the module docstring).
    resource_id: uuid.UUID = field(default_factory=uuid.uuid4)
    #: The `resource_id` of the abandoned claim this one took over, if it took one over and it had one: what
    #: that request may have stored and can no longer commit.
    abandoned_resource_id: uuid.UUID | None = None

    @property
    def db(self) -> Database:
        """The database the keys live in."""
        return self.keys.db

    @property
    def held(self) -> HeldKey:
        """The key as this claim holds it."""
        return HeldKey(self.owner_id, self.route, self.key, self.token)

    async def take(self, fingerprint: str) -> tuple[int, bytes] | None:
        """Claim the key (None), or the recorded response to replay; raise if it is in use or reused."""
        held = self.held
        sent = False
        try:
            async with self.db.service_transaction() as conn:
                # Keeps the table to the keys in use, and frees an expired key for this claim.
                await keys.purge_owner_expired(conn, self.owner_id)
                for _ in range(_CLAIM_ROUNDS):
                    sent = True
                    if await keys.claim(conn, held, fingerprint=fingerprint, ttl=TTL, resource_id=self.resource_id):
                        return None
                    row = await keys.existing(conn, held, lease=LEASE)
                    if row is None:
                        continue  # released between the two statements: try to insert again
                    failed_here = row["state"] == "in_flight" and self.keys.failed_here(row["claim_token"])
                    if row["abandoned"] or failed_here:
                        await keys.reclaim(conn, held, fingerprint=fingerprint, ttl=TTL, resource_id=self.resource_id)
                        self.keys.forget(row["claim_token"])
                        self.abandoned_resource_id = row["resource_id"]
                        return None
                    if row["fingerprint"] != fingerprint:
                        raise IdempotencyKeyReused
                    if row["state"] == "in_flight":
                        raise IdempotencyKeyInFlight
                    return row["response_status"], row["response_body"].encode()
        except DatabaseUnavailable:
            if sent:
                # A hung server still holds what it was sent, the COMMIT too, and may commit the claim
                # once it wakes: it is released as a failed request's would be.
                self.keys.release_later(self)
            raise
        raise IdempotencyKeyInFlight

    async def __call__(self, conn: Connection, result: object) -> None:
        """Record `result` (see `record`): the claim is the Recorder its request's service calls."""
        await self.record(conn, result)

    async def record(self, conn: Connection, result: object) -> None:
        """Mark the key completed with `result` as its response, in the caller's transaction."""
        body = encode_json(result, default_serializer)
        await become_service(conn)
        if not await keys.complete(conn, self.held, status=self.status, body=body.decode()):
            # The lease ran out and another request took the key over: this one must not take effect.
            raise IdempotencyKeyInFlight("Another request took over this Idempotency-Key; retry to see its outcome.")
        self.response = body

    async def release(self) -> None:
        """Give the key back unless it was completed; if the database cannot be reached, later."""
        if not await self.try_release():
            self.keys.release_later(self)

    async def try_release(self) -> bool:
        """Give the key back unless it was completed; False if the database could not be reached."""
        try:
            async with self.db.service_transaction(budget=_RELEASE_SECONDS) as conn:
                await keys.release(conn, self.held)
        except (DatabaseUnavailable, ServerBusy):
            return False  # an outage (logged as one), or no connection free: retried later
        except Exception:
            log.warning("could not release idempotency key of %s on %s", self.owner_id, self.route, exc_info=True)
        self.released = True
        return True

    def lease_ended(self) -> bool:
        """Whether the claim is past its lease, which lets any request take the key over anyway."""
        return time.monotonic() - self.claimed_at > LEASE.total_seconds()


def _route_status(request: Request[Any, Any, Any]) -> int:
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler):
        raise TypeError("idempotent() serves HTTP route handlers only")
    return handler.status_code


def _json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)
