"""What the Storage stand-in's route handlers read of a request, checked as Storage's schemas check it: who
calls (their bearer token, or the gateway's `apikey`), the JSON body, the object key in the path, an upload's
headers, and the numbers and enums a body or query names. `StandIn` is what every handler is handed."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import SkipValidation

from backend.errors import InvalidJson, ServiceUnavailable
from backend.fields import nul_field
from backend.json_body import read_json
from standins.storage import errors
from standins.storage.buckets import BucketService
from standins.storage.errors import StorageError
from standins.storage.listing import ListService
from standins.storage.objects import ObjectService
from standins.storage.rules import GLOBAL_FILE_SIZE_LIMIT
from standins.storage.uploads import UploadMeta

VerifyJwt = Callable[[str], Awaitable[Mapping[str, Any]]]
# JSON bodies here are a handful of fields; uploads stream and set their own limit (None).
JSON_BODY_LIMIT = 1024 * 1024
#: The most an object upload may announce, for the entry check (`backend.body_limit.BODY_LIMIT`): Storage's global
#: limit on an object, and room for a multipart form's framing around it; a bucket's own limit is the service's.
UPLOAD_BODY_LIMIT = GLOBAL_FILE_SIZE_LIMIT + 64 * 1024
#: The latest expiry a signed URL may have: 9999-12-31T23:59:59Z, the last instant an HTTP date (its
#: `Expires` header) can name. Storage's own bound is where a JavaScript date ends (its
#: `assertValidNumericJWTExpiration`); past either, `expiresIn` is an InvalidParameter, not a 500.
LATEST_EXPIRY = 253402300799
#: Storage's `MAX_OBJECTS_PER_REQUEST` (src/storage/limits.ts): most paths one request may sign or delete.
MAX_OBJECTS_PER_REQUEST = 1000
#: What a refusal of a NUL character says after naming where it was.
NO_NUL = "must not contain a NUL character (U+0000)"
#: The orders a sort may take, in a list's body or a bucket list's query.
SORT_ORDERS = ("asc", "desc")
_INTEGER = re.compile(r"-?[0-9]{1,15}")


@dataclass(frozen=True)
class StandIn:
    """The stand-in's services, and how a caller's token is verified (`verify_jwt` turns it into their claims
    or raises)."""

    objects: ObjectService
    lists: ListService
    buckets: BucketService
    verify_jwt: VerifyJwt

    async def claims(self, request: Request[Any, Any, Any]) -> Mapping[str, Any]:
        """The caller's claims, from their bearer token; InvalidJwt without one, or when it is refused."""
        authorization = request.headers.get("authorization")
        if authorization is None and (apikey := request.headers.get("apikey")):
            # The gateway in front of Storage makes the `apikey` header the bearer token when a request has
            # none (supabase/cli internal/start/start.go, `BearerToken`; a legacy anon or service key).
            authorization = f"Bearer {apikey}"
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.invalid_jwt("No authorization header was provided")
        try:
            return await self.verify_jwt(token)
        except (StorageError, ServiceUnavailable):
            raise
        except Exception as exc:
            # Whatever the verifier's reason, the body says only that the token was refused.
            raise errors.invalid_jwt() from exc


# Injected by name; the value is the router's own, so Litestar need not validate it.
StandInDep = NamedDependency[SkipValidation[StandIn]]
"""`stand_in`: the stand-in's services and the caller's claims, as `storage_router` built them."""


def wants_upsert(request: Request[Any, Any, Any]) -> bool:
    """Storage's `x-upsert: true` header: overwrite an existing object instead of refusing."""
    return (request.headers.get("x-upsert") or "").lower() == "true"


def key(path: Path) -> str:
    """The object key of a route's `path` parameter."""
    # Litestar hands a `path` parameter over as an absolute Path; the object key has no leading slash.
    return str(path).lstrip("/")


def quoted(bucket: str, object_key: str) -> str:
    """`bucket/key` as a URL's path, each character outside the unreserved set escaped."""
    return quote(f"{bucket}/{object_key}", safe="/")


def upload_meta(request: Request[Any, Any, Any]) -> UploadMeta:
    """What an upload's headers say about its body besides its bytes."""
    length = request.headers.get("content-length")
    return UploadMeta(
        content_type=request.headers.get("content-type"),
        content_length=int(length) if length and length.isdigit() else None,
        cache_control=request.headers.get("cache-control"),
        x_metadata=request.headers.get("x-metadata"),
    )


async def json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The body as a JSON object, refused (InvalidRequest, in words) when it is not UTF-8 JSON nested at most
    `backend.json_body.MAX_DEPTH` deep, or holds a NUL character in any string (naming where)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = read_json(raw)
    except InvalidJson as exc:
        raise errors.invalid_request(exc.detail) from None
    if not isinstance(value, dict):
        raise errors.invalid_request("the body must be a JSON object")
    if (field := nul_field(value, "body")) is not None:
        raise errors.invalid_request(f"{field} {NO_NUL}")
    return value


def names(body: dict[str, Any], member: str) -> list[str]:
    """A body's list of 1 to MAX_OBJECTS_PER_REQUEST object names, else InvalidRequest."""
    value = body.get(member)
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_OBJECTS_PER_REQUEST
        or not all(isinstance(p, str) for p in value)
    ):
        raise errors.invalid_request(f"body/{member} must be a list of 1 to {MAX_OBJECTS_PER_REQUEST} object names")
    return value


def transfer(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """A move's or copy's body (Storage's schema): source bucket and key, destination bucket and key,
    the destination bucket defaulting to the source's."""
    for name in ("bucketId", "sourceKey", "destinationKey"):
        if not isinstance(body.get(name), str):
            raise errors.invalid_request(f"body/{name} is required and must be a string")
    dest_bucket = body.get("destinationBucket") or body["bucketId"]
    if not isinstance(dest_bucket, str):
        raise errors.invalid_request("body/destinationBucket must be a string")
    return body["bucketId"], body["sourceKey"], dest_bucket, body["destinationKey"]


def expires_in(value: Any) -> int:
    """`expiresIn` as Storage takes it: an integer >= 1 (storage3 sends a string, which Storage's schema
    coerces), whose expiry is one a date can hold (LATEST_EXPIRY)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = 0
    if isinstance(value, bool) or number < 1:
        raise errors.invalid_request("body/expiresIn must be an integer >= 1")
    if number > LATEST_EXPIRY - int(time.time()):
        raise errors.invalid_parameter("expiresIn")
    return number


def integer(value: Any, name: str, minimum: int) -> int | None:
    """An optional integer >= `minimum`, given as a number or as its digits (Storage's schema coerces)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not _INTEGER.fullmatch(str(value)):
        raise errors.invalid_request(f"{name} must be integer")
    number = int(value)
    if number < minimum:
        raise errors.invalid_request(f"{name} must be >= {minimum}")
    return number


def one_of(value: Any, name: str, allowed: tuple[str, ...]) -> str | None:
    """An optional value of an enum in Storage's schema."""
    if value is None:
        return None
    if value not in allowed:
        raise errors.invalid_request(f"{name} must be equal to one of the allowed values")
    return str(value)
