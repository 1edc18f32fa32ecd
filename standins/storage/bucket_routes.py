"""The Storage stand-in's bucket routes (src/http/routes/bucket/): listing and reading buckets as the caller's
RLS shows them, and making, changing, emptying and deleting them: a user is refused as Storage refuses one on a
project with no policy on `storage.buckets`; the service key may do each."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from standins.storage import errors, route_responses
from standins.storage.buckets import BucketListOptions, BucketSettings
from standins.storage.route_requests import JSON_BODY_LIMIT, SORT_ORDERS, StandInDep, integer, json_body, one_of
from standins.storage.rules import GLOBAL_FILE_SIZE_LIMIT

_BUCKET_SORT_COLUMNS = ("id", "name", "created_at", "updated_at")
#: Storage's `VALID_BUCKET_NAME` (src/storage/limits.ts), at most 100 characters.
_STORAGE_BUCKET_NAME = re.compile(r"[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}")
#: Storage's `validateMimeType` rule (src/storage/storage.ts).
_MIME_RULE = re.compile(r"([a-zA-Z0-9\-+.]+)/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?|.*\*")
_SIZE_WITH_UNIT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)", re.IGNORECASE)
_SIZE_UNITS = {"gb": 10**9, "mb": 10**6, "kb": 1000, "b": 1}


@get("/bucket")
async def list_buckets(
    request: Request[Any, Any, Any],
    stand_in: StandInDep,
    limit: FromQuery[str | None] = None,
    offset: FromQuery[str | None] = None,
    sort_column: Annotated[str | None, QueryParameter(name="sortColumn")] = None,
    sort_order: Annotated[str | None, QueryParameter(name="sortOrder")] = None,
    search: FromQuery[str | None] = None,
) -> list[dict[str, Any]]:
    """The buckets the caller's RLS shows (`limit`, `offset`, `sortColumn`, `sortOrder`, `search`)."""
    options = BucketListOptions(
        limit=integer(limit, "querystring/limit", 1),
        offset=integer(offset, "querystring/offset", 0),
        column=one_of(sort_column, "querystring/sortColumn", _BUCKET_SORT_COLUMNS),
        order=one_of(sort_order, "querystring/sortOrder", SORT_ORDERS) or "asc",
        search=search or "",
    )
    rows = await stand_in.buckets.list_buckets(await stand_in.claims(request), options)
    return [route_responses.bucket(row) for row in rows]


@get("/bucket/{bucket_id:str}")
async def get_bucket(request: Request[Any, Any, Any], stand_in: StandInDep, bucket_id: FromPath[str]) -> dict[str, Any]:
    """One bucket, if the caller's RLS shows it."""
    return route_responses.bucket(await stand_in.buckets.get_bucket(await stand_in.claims(request), bucket_id))


@post("/bucket", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def create_bucket(request: Request[Any, Any, Any], stand_in: StandInDep) -> dict[str, str]:
    """`{name, id?, public?, type?, file_size_limit?, allowed_mime_types?}` → `{name}`."""
    body = await json_body(request)
    name, bucket_id = body.get("name"), body.get("id")
    if not isinstance(name, str):
        raise errors.invalid_request("body must have required property 'name'")
    if bucket_id is not None and not isinstance(bucket_id, str):
        raise errors.invalid_request("body/id must be string")
    if body.get("type") not in (None, "STANDARD", "ANALYTICS"):
        raise errors.invalid_request("body/type must be equal to one of the allowed values")
    if name.strip() != name or not _STORAGE_BUCKET_NAME.fullmatch(name):
        raise errors.invalid_bucket_name()
    if body.get("type") == "ANALYTICS":
        raise errors.feature_not_enabled("Iceberg buckets are not enabled for this tenant")
    settings = _bucket_settings(body)
    await stand_in.buckets.create_bucket(await stand_in.claims(request), bucket_id or name, name, settings)
    return {"name": name}


@put("/bucket/{bucket_id:str}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def update_bucket(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket_id: FromPath[str]
) -> dict[str, str]:
    """Any of `{public, file_size_limit, allowed_mime_types}` (other members are ignored, as Storage's
    schema does) → `{message}`."""
    settings = _bucket_settings(await json_body(request))
    if not settings.given:
        raise errors.invalid_request("body must have required property 'public'")
    if not _STORAGE_BUCKET_NAME.fullmatch(bucket_id):
        raise errors.invalid_bucket_name()
    await stand_in.buckets.update_bucket(await stand_in.claims(request), bucket_id, settings)
    return {"message": "Successfully updated"}


@delete("/bucket/{bucket_id:str}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def delete_bucket(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket_id: FromPath[str]
) -> dict[str, str]:
    """An empty bucket → `{message}`; one with objects: ResourceNotEmpty."""
    await json_body(request)
    await stand_in.buckets.delete_bucket(await stand_in.claims(request), bucket_id)
    return {"message": "Successfully deleted"}


@post("/bucket/{bucket_id:str}/empty", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def empty_bucket(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket_id: FromPath[str]
) -> dict[str, str]:
    """Every object of the bucket deleted (the service key only) → Storage's `{message}`."""
    await json_body(request)
    await stand_in.buckets.empty_bucket(await stand_in.claims(request), bucket_id)
    return {"message": "Empty bucket has been queued. Completion may take up to an hour."}


#: This module's route handlers, for the router.
HANDLERS = [list_buckets, get_bucket, create_bucket, update_bucket, delete_bucket, empty_bucket]


def _bucket_settings(body: dict[str, Any]) -> BucketSettings:
    """The settings a bucket body names, checked against Storage's schema (createBucket.ts, updateBucket.ts,
    schemas/file-size-limit.ts) and its `createBucket`/`updateBucket`: a size limit in bytes or with a unit,
    at most the global limit (EntityTooLarge); MIME types of its pattern (InvalidMimeType)."""
    given = frozenset(key for key in ("public", "file_size_limit", "allowed_mime_types") if key in body)
    public = body.get("public", False)
    if not isinstance(public, bool):
        raise errors.invalid_request("body/public must be boolean")
    limit = _file_size_limit(body.get("file_size_limit"))
    types = body.get("allowed_mime_types")
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise errors.invalid_request("body/allowed_mime_types must be array of strings")
        types = [t for t in types if t]
        for mime in types:
            if len(mime) > 1000 or not _MIME_RULE.fullmatch(mime):
                raise errors.invalid_mime_type(mime)
    return BucketSettings(public=public, file_size_limit=limit, allowed_mime_types=types, given=given)


def _file_size_limit(value: Any) -> int | None:
    """Storage's `file_size_limit`: null, an integer >= 0 (bytes), or digits with a unit (`"100MB"`: powers of
    1000, the number to three significant digits, as `parseFileSizeToBytes` does)."""
    if value is None:
        return None
    if isinstance(value, str) and (match := _SIZE_WITH_UNIT.fullmatch(value)):
        number = float(f"{float(match[1]):.3g}") * _SIZE_UNITS[match[2].lower()]
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        number = value
    else:
        raise errors.invalid_request("body/file_size_limit must be an integer >= 0 or a size such as '100MB'")
    if number > GLOBAL_FILE_SIZE_LIMIT:
        raise errors.entity_too_large()
    return int(number)
