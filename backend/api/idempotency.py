"""`Idempotency-Key` on the create routes: the same key with the same request replays the first
response; with a different request it is a 422; while the first is still running, a 409.

A key is scoped to its user and route (method, route template and path parameters). It is claimed
`in_flight` in a committed transaction of its own, so a concurrent duplicate sees the claim; the
service then marks it `completed` with the response inside the transaction that makes its write,
so the key and the write commit together or not at all. When the service raises, the claim is
released and the client may retry with the same key. A claim whose process died is reclaimable
once it is older than `LEASE`; a key expires after `TTL`.

A route applies it in one call::

    return await idempotent(request, claims, lambda record: svc.create(..., record=record), body=...)

where the service calls `await record(conn, result)` (a `backend.db.pool.Recorder`) on its open
transaction just before it commits.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.handlers import HTTPRouteHandler
from litestar.serialization import default_serializer, encode_json

from backend.api.deps import pool_of
from backend.auth.verify import UserClaims
from backend.db.execute import fetch_optional
from backend.db.pool import Connection, Pool, Recorder, become_service, service_transaction
from backend.db.queries import load_queries
from backend.errors import DatabaseUnavailable, IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidIdempotencyKey

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
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
# Releasing is a courtesy (the lease frees the key anyway), so a request failing because the database
# hangs does not wait a second time for it.
_RELEASE_SECONDS = 0.25

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
    action: Callable[[Recorder | None], Awaitable[T]],
    *,
    body: bytes = b"",
    fingerprint: str | None = None,
) -> Response[T]:
    """Run `action` at most once per `Idempotency-Key`, answering with the route's status code.

    The request is identified by `fingerprint` when given (say, a hash of multipart fields and the
    file's sha256), else by the sha256 of `body`. Without the header, `action(None)` simply runs.
    With it, `action` gets a Recorder; a service that does not call it has its response recorded
    right after it returns instead, which is not atomic with its write.
    """
    status = _route_status(request)
    key = idempotency_key(request)
    if key is None:
        return Response(await action(None), status_code=status)
    claim = _Claim(pool_of(request), uuid.UUID(claims.sub), route_scope(request), key, uuid.uuid4(), status)
    replayed = await claim.take(fingerprint or body_fingerprint(body))
    if replayed is not None:
        return _json_response(*replayed, headers={REPLAYED_HEADER: "true"})
    try:
        result = await action(claim.record)
        if not claim.response:
            async with service_transaction(claim.pool) as conn:
                await claim.record(conn, result)
    except BaseException:
        # Also on cancellation: the client may retry at once instead of waiting out the lease.
        await claim.release()
        raise
    return _json_response(status, claim.response)


@dataclass
class _Claim:
    """One request's hold on one key."""

    pool: Pool
    owner_id: uuid.UUID
    route: str
    key: str
    token: uuid.UUID
    status: int
    #: The recorded response's JSON (never empty once recorded).
    response: bytes = b""

    def _params(self, **extra: object) -> dict[str, object]:
        return {"owner_id": self.owner_id, "route": self.route, "key": self.key, "claim_token": self.token} | extra

    async def take(self, fingerprint: str) -> tuple[int, bytes] | None:
        """Claim the key (None), or the recorded response to replay; raise if it is in use or reused."""
        params = self._params(fingerprint=fingerprint, ttl=TTL, lease=LEASE)
        async with service_transaction(self.pool) as conn:
            # Keeps the table to the keys in use, and frees an expired key for this claim.
            await conn.execute(_Q["purge_owner_expired"], params)
            for _ in range(_CLAIM_ROUNDS):
                if await fetch_optional(conn, _Q["claim"], params) is not None:
                    return None
                row = await fetch_optional(conn, _Q["existing"], params)
                if row is None:
                    continue  # released between the two statements: try to insert again
                if row["abandoned"]:
                    await conn.execute(_Q["reclaim"], params)
                    return None
                if row["fingerprint"] != fingerprint:
                    raise IdempotencyKeyReused
                if row["state"] == "in_flight":
                    raise IdempotencyKeyInFlight
                return row["response_status"], row["response_body"].encode()
        raise IdempotencyKeyInFlight

    async def record(self, conn: Connection, result: object) -> None:
        """The Recorder a service gets: mark the key completed with `result` as its response, in the
        caller's transaction."""
        body = encode_json(result, default_serializer)
        await become_service(conn)
        if await fetch_optional(conn, _Q["complete"], self._params(status=self.status, body=body.decode())) is None:
            # The lease ran out and another request took the key over: this one must not take effect.
            raise IdempotencyKeyInFlight("Another request took over this Idempotency-Key; retry to see its outcome.")
        self.response = body

    async def release(self) -> None:
        """Give the key back unless it was completed; if that fails too, the lease frees it later."""
        try:
            async with service_transaction(self.pool, budget=_RELEASE_SECONDS) as conn:
                await conn.execute(_Q["release"], self._params())
        except DatabaseUnavailable:
            pass  # an outage, logged as one; the lease frees the key
        except Exception:
            log.warning("could not release idempotency key of %s on %s", self.owner_id, self.route, exc_info=True)


def _route_status(request: Request[Any, Any, Any]) -> int:
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler):
        raise TypeError("idempotent() serves HTTP route handlers only")
    return handler.status_code


def _json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)
