"""Supabase Storage's object routes as a Litestar router mounted at `/storage/v1`.

What voicegate and the stock clients use: signed upload and download URLs (one or many), authenticated
upload, download, HEAD, info, list and list-v2, delete, move and copy, the public-object routes (download, info,
HEAD), and the bucket routes (read, create, update, empty, delete). Every answer under `/storage/v1`, an unknown
route's included (`storage_errors_under`), is Storage's envelope with
Storage's HTTP status rule, because storage3 and storage-js parse it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from litestar import Request, Response, Router, delete, get, head, post, put, route
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from backend.body_limit import BODY_LIMIT
from backend.db.units import Database
from backend.errors import ClientError, InvalidJson, PayloadTooLarge, ServiceUnavailable, TooManyRequests
from backend.fields import nul_field
from backend.json_body import read_json
from standins.storage import errors
from standins.storage.errors import StorageError
from standins.storage.service import (
    GLOBAL_FILE_SIZE_LIMIT,
    BucketListOptions,
    BucketSettings,
    ListOptions,
    ListV2Options,
    StorageService,
    StoredObject,
    UploadMeta,
    file_etag,
)

log = logging.getLogger(__name__)

VerifyJwt = Callable[[str], Awaitable[Mapping[str, Any]]]
ExceptionHandler = Callable[[Request[Any, Any, Any], Exception], Response[Any]]
#: Where the stand-in is mounted, as Supabase mounts Storage behind its gateway.
STORAGE_PATH = "/storage/v1"
_CHUNK = 64 * 1024
# JSON bodies here are a handful of fields; uploads stream and set their own limit (None).
_JSON_BODY_LIMIT = 1024 * 1024
#: The most an object upload may announce, for the entry check (`backend.body_limit.BODY_LIMIT`): Storage's global
#: limit on an object, and room for a multipart form's framing around it; a bucket's own limit is the service's.
_UPLOAD_BODY_LIMIT = GLOBAL_FILE_SIZE_LIMIT + 64 * 1024
#: The latest expiry a signed URL may have: 9999-12-31T23:59:59Z, the last instant an HTTP date (its
#: `Expires` header) can name. Storage's own bound is where a JavaScript date ends (its
#: `assertValidNumericJWTExpiration`); past either, `expiresIn` is an InvalidParameter, not a 500.
LATEST_EXPIRY = 253402300799
# Paths in log lines are cut to this; a refused key can be kilobytes long.
_LOGGED_PATH_CHARS = 200
#: Storage's `MAX_OBJECTS_PER_REQUEST` (src/storage/limits.ts): most paths one request may sign or delete.
MAX_OBJECTS_PER_REQUEST = 1000
_LIST_SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")
_LIST_V2_SORT_COLUMNS = ("name", "updated_at", "created_at")
_BUCKET_SORT_COLUMNS = ("id", "name", "created_at", "updated_at")
_SORT_ORDERS = ("asc", "desc")
_INTEGER = re.compile(r"-?[0-9]{1,15}")
#: Storage's `VALID_BUCKET_NAME` (src/storage/limits.ts), at most 100 characters.
_STORAGE_BUCKET_NAME = re.compile(r"[A-Za-z0-9_!.*'() &$=@;:+,?-]{1,100}")
#: Storage's `validateMimeType` rule (src/storage/storage.ts).
_MIME_RULE = re.compile(r"([a-zA-Z0-9\-+.]+)/([a-zA-Z0-9\-+.]+)(;\s*charset=[a-zA-Z0-9\-]+)?|.*\*")
_SIZE_WITH_UNIT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)", re.IGNORECASE)
_SIZE_UNITS = {"gb": 10**9, "mb": 10**6, "kb": 1000, "b": 1}
_NO_NUL = "must not contain a NUL character (U+0000)"


def storage_router(db: Database, signing_secret: str, root_dir: Path, verify_jwt: VerifyJwt) -> Router:
    """The `/storage/v1` router.

    `verify_jwt` turns a bearer token into the caller's claims (`role` is `authenticated` with a `sub`,
    or `service_role`) or raises; `signing_secret` signs the URL tokens (HS256); object bytes live
    under `root_dir`.
    """
    service = StorageService(db, signing_secret, root_dir)

    async def caller(request: Request[Any, Any, Any]) -> Mapping[str, Any]:
        authorization = request.headers.get("authorization")
        if authorization is None and (apikey := request.headers.get("apikey")):
            # The gateway in front of Storage makes the `apikey` header the bearer token when a request has
            # none (supabase/cli internal/start/start.go, `BearerToken`; a legacy anon or service key).
            authorization = f"Bearer {apikey}"
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.invalid_jwt("No authorization header was provided")
        try:
            return await verify_jwt(token)
        except (StorageError, ServiceUnavailable):
            raise
        except Exception as exc:
            # Whatever the verifier's reason, the body says only that the token was refused.
            raise errors.invalid_jwt() from exc

    return Router(
        path=STORAGE_PATH,
        route_handlers=[
            *_signed_url_handlers(service, caller),
            *_object_handlers(service, caller),
            *_read_handlers(service, caller),
            *_bucket_handlers(service, caller),
        ],
        before_request=_refuse_nul_in_url,
        exception_handlers={Exception: storage_error_response},
        # The OpenAPI schema documents voicegate's own API; this is Supabase's.
        include_in_schema=False,
    )


Caller = Callable[[Request[Any, Any, Any]], Awaitable[Mapping[str, Any]]]


def _wants_upsert(request: Request[Any, Any, Any]) -> bool:
    """Storage's `x-upsert: true` header: overwrite an existing object instead of refusing."""
    return (request.headers.get("x-upsert") or "").lower() == "true"


def _signed_url_handlers(service: StorageService, caller: Caller) -> list[HTTPRouteHandler]:
    """Signing, and using, signed upload and download URLs."""

    @post("/object/upload/sign/{bucket:str}/{path:path}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def create_signed_upload_url(
        request: Request[Any, Any, Any], bucket: FromPath[str], path: FromPath[Path]
    ) -> dict[str, str]:
        key = _key(path)
        token = await service.sign_upload(await caller(request), bucket, key, upsert=_wants_upsert(request))
        return {"url": f"/object/upload/sign/{_quoted(bucket, key)}?token={token}", "token": token}

    @put(
        "/object/upload/sign/{bucket:str}/{path:path}",
        status_code=200,
        request_max_body_size=None,
        opt={BODY_LIMIT: _UPLOAD_BODY_LIMIT},
    )
    async def upload_to_signed_url(
        request: Request[Any, Any, Any],
        bucket: FromPath[str],
        path: FromPath[Path],
        token: FromQuery[str | None] = None,
    ) -> dict[str, str]:
        key = _key(path)
        if not token:
            raise errors.invalid_jwt("Missing token")
        await service.upload_signed(bucket, key, token, _upload_meta(request), request.stream())
        return {"Key": f"{bucket}/{key}"}

    @post("/object/sign/{bucket:str}/{path:path}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def create_signed_url(
        request: Request[Any, Any, Any], bucket: FromPath[str], path: FromPath[Path]
    ) -> dict[str, str]:
        key = _key(path)
        body = await _json_body(request)
        expires_in = _expires_in(body.get("expiresIn"))
        token = await service.sign_download(await caller(request), bucket, key, expires_in)
        return {"signedURL": f"/object/sign/{_quoted(bucket, key)}?token={token}"}

    @post("/object/sign/{bucket:str}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def create_signed_urls(request: Request[Any, Any, Any], bucket: FromPath[str]) -> list[dict[str, str | None]]:
        """`{expiresIn, paths}`: a download URL for each path the caller can see, an error for each other."""
        body = await _json_body(request)
        expires_in = _expires_in(body.get("expiresIn"))
        paths = body.get("paths")
        if (
            not isinstance(paths, list)
            or not 1 <= len(paths) <= MAX_OBJECTS_PER_REQUEST
            or not all(isinstance(p, str) for p in paths)
        ):
            raise errors.invalid_request(f"body/paths must be a list of 1 to {MAX_OBJECTS_PER_REQUEST} object names")
        return await service.sign_downloads(await caller(request), bucket, paths, expires_in)

    @get("/object/sign/{bucket:str}/{path:path}")
    async def get_signed_object(
        bucket: FromPath[str],
        path: FromPath[Path],
        token: FromQuery[str | None] = None,
        download: FromQuery[str | None] = None,
    ) -> Stream:
        key = _key(path)
        if not token:
            raise errors.invalid_jwt("Missing token")
        stored, expires_at = await service.find_signed(bucket, key, token)
        response = await _stream(stored, download)
        # Clamped: a token signed elsewhere with the same secret may claim an expiry no date can hold.
        expires = datetime.fromtimestamp(min(expires_at, LATEST_EXPIRY), tz=UTC)
        response.headers["Expires"] = format_datetime(expires, usegmt=True)
        return response

    return [create_signed_upload_url, upload_to_signed_url, create_signed_url, create_signed_urls, get_signed_object]


def _object_handlers(service: StorageService, caller: Caller) -> list[HTTPRouteHandler]:
    """Authenticated upload, download, HEAD, info, delete, move and copy."""

    @route(
        "/object/{bucket:str}/{path:path}",
        http_method=["POST", "PUT"],
        status_code=200,
        request_max_body_size=None,
        opt={BODY_LIMIT: _UPLOAD_BODY_LIMIT},
    )
    async def upload_object(
        request: Request[Any, Any, Any], bucket: FromPath[str], path: FromPath[Path]
    ) -> dict[str, str]:
        """POST creates the object (replacing it only with `x-upsert: true`); PUT replaces it."""
        key = _key(path)
        upsert = request.method == "PUT" or _wants_upsert(request)
        claims = await caller(request)
        object_id = await service.upload(claims, bucket, key, _upload_meta(request), request.stream(), upsert=upsert)
        return {"Id": object_id, "Key": f"{bucket}/{key}"}

    @get(["/object/{bucket:str}/{path:path}", "/object/authenticated/{bucket:str}/{path:path}"])
    async def download_object(
        request: Request[Any, Any, Any],
        bucket: FromPath[str],
        path: FromPath[Path],
        download: FromQuery[str | None] = None,
    ) -> Stream:
        stored = await service.find(await caller(request), bucket, _key(path))
        return await _stream(stored, download)

    @head(["/object/{bucket:str}/{path:path}", "/object/authenticated/{bucket:str}/{path:path}"])
    async def object_exists(
        request: Request[Any, Any, Any], bucket: FromPath[str], path: FromPath[Path]
    ) -> Response[None]:
        stored = await service.find_info(await caller(request), bucket, _key(path))
        return _head(stored)

    @get(["/object/info/{bucket:str}/{path:path}", "/object/info/authenticated/{bucket:str}/{path:path}"])
    async def object_info(
        request: Request[Any, Any, Any], bucket: FromPath[str], path: FromPath[Path]
    ) -> dict[str, Any]:
        stored = await service.find_info(await caller(request), bucket, _key(path))
        return _info(stored)

    @delete("/object/{bucket:str}/{path:path}", status_code=200)
    async def delete_object(
        request: Request[Any, Any, Any], bucket: FromPath[str], path: FromPath[Path]
    ) -> dict[str, str]:
        await service.delete_one(await caller(request), bucket, _key(path))
        return {"message": "Successfully deleted"}

    @delete("/object/{bucket:str}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def delete_objects(request: Request[Any, Any, Any], bucket: FromPath[str]) -> list[dict[str, Any]]:
        prefixes = (await _json_body(request)).get("prefixes")
        if (
            not isinstance(prefixes, list)
            or not 1 <= len(prefixes) <= 1000
            or not all(isinstance(p, str) for p in prefixes)
        ):
            raise errors.invalid_request("body/prefixes must be a list of 1 to 1000 object names")
        return await service.delete(await caller(request), bucket, prefixes)

    @post("/object/move", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def move_object(request: Request[Any, Any, Any]) -> dict[str, str]:
        """`{bucketId, sourceKey, destinationKey, destinationBucket?}`: rename, under the caller's RLS."""
        bucket, source, dest_bucket, dest = _transfer(await _json_body(request))
        object_id = await service.move(await caller(request), bucket, source, dest_bucket, dest)
        return {"message": "Successfully moved", "Id": object_id, "Key": dest}

    @post("/object/copy", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def copy_object(request: Request[Any, Any, Any]) -> dict[str, str]:
        """The same body; the copy replaces an object only with `x-upsert: true`."""
        bucket, source, dest_bucket, dest = _transfer(await _json_body(request))
        claims = await caller(request)
        object_id = await service.copy(claims, bucket, source, dest_bucket, dest, upsert=_wants_upsert(request))
        return {"Id": object_id, "Key": f"{dest_bucket}/{dest}"}

    return [
        upload_object,
        download_object,
        object_exists,
        object_info,
        delete_object,
        delete_objects,
        move_object,
        copy_object,
    ]


def _read_handlers(service: StorageService, caller: Caller) -> list[HTTPRouteHandler]:
    """Listing a folder, reading buckets, and the public-object route."""

    @post("/object/list/{bucket:str}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def list_objects(request: Request[Any, Any, Any], bucket: FromPath[str]) -> list[dict[str, Any]]:
        """`{prefix, limit?, offset?, sortBy?: {column, order?}, search?}`: one folder level, under RLS."""
        options = _list_options(await _json_body(request))
        return await service.list_objects(await caller(request), bucket, options)

    @post("/object/list-v2/{bucket:str}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def list_objects_v2(request: Request[Any, Any, Any], bucket: FromPath[str]) -> dict[str, Any]:
        """`{prefix?, limit?, cursor?, with_delimiter?, sortBy?: {column, order?}}`: a page under RLS, with
        `hasNext` and the `nextCursor` that continues it; one folder level with `with_delimiter`."""
        options = _list_v2_options(await _json_body(request))
        return await service.list_objects_v2(await caller(request), bucket, options)

    @get("/bucket")
    async def list_buckets(
        request: Request[Any, Any, Any],
        limit: FromQuery[str | None] = None,
        offset: FromQuery[str | None] = None,
        sort_column: Annotated[str | None, QueryParameter(name="sortColumn")] = None,
        sort_order: Annotated[str | None, QueryParameter(name="sortOrder")] = None,
        search: FromQuery[str | None] = None,
    ) -> list[dict[str, Any]]:
        """The buckets the caller's RLS shows (`limit`, `offset`, `sortColumn`, `sortOrder`, `search`)."""
        options = BucketListOptions(
            limit=_integer(limit, "querystring/limit", 1),
            offset=_integer(offset, "querystring/offset", 0),
            column=_one_of(sort_column, "querystring/sortColumn", _BUCKET_SORT_COLUMNS),
            order=_one_of(sort_order, "querystring/sortOrder", _SORT_ORDERS) or "asc",
            search=search or "",
        )
        return [_bucket(row) for row in await service.list_buckets(await caller(request), options)]

    @get("/bucket/{bucket_id:str}")
    async def get_bucket(request: Request[Any, Any, Any], bucket_id: FromPath[str]) -> dict[str, Any]:
        """One bucket, if the caller's RLS shows it."""
        return _bucket(await service.get_bucket(await caller(request), bucket_id))

    @get("/object/info/public/{bucket:str}/{path:path}")
    async def public_object_info(bucket: FromPath[str], path: FromPath[Path]) -> dict[str, Any]:
        """An object of a public bucket's info, for anyone; a bucket that is not public: Bucket not found."""
        return _info(await service.find_public(bucket, _key(path)))

    @head("/object/public/{bucket:str}/{path:path}")
    async def public_object_exists(bucket: FromPath[str], path: FromPath[Path]) -> Response[None]:
        """HEAD of an object of a public bucket, for anyone (Storage's `publicRoutes`)."""
        return _head(await service.find_public(bucket, _key(path)))

    @get("/object/public/{bucket:str}/{path:path}")
    async def get_public_object(
        bucket: FromPath[str], path: FromPath[Path], download: FromQuery[str | None] = None
    ) -> Stream:
        """An object of a public bucket, for anyone; every voicegate bucket is private, so: Bucket not found."""
        return await _stream(await service.find_public(bucket, _key(path)), download)

    return [
        list_objects,
        list_objects_v2,
        list_buckets,
        get_bucket,
        public_object_info,
        public_object_exists,
        get_public_object,
    ]


def _bucket_handlers(service: StorageService, caller: Caller) -> list[HTTPRouteHandler]:
    """Making, changing, emptying and deleting buckets (src/http/routes/bucket/): a user is refused as Storage
    refuses one on a project with no policy on `storage.buckets`; the service key may do each."""

    @post("/bucket", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def create_bucket(request: Request[Any, Any, Any]) -> dict[str, str]:
        """`{name, id?, public?, type?, file_size_limit?, allowed_mime_types?}` → `{name}`."""
        body = await _json_body(request)
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
        await service.create_bucket(await caller(request), bucket_id or name, name, settings)
        return {"name": name}

    @put("/bucket/{bucket_id:str}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def update_bucket(request: Request[Any, Any, Any], bucket_id: FromPath[str]) -> dict[str, str]:
        """Any of `{public, file_size_limit, allowed_mime_types}` (other members are ignored, as Storage's
        schema does) → `{message}`."""
        settings = _bucket_settings(await _json_body(request))
        if not settings.given:
            raise errors.invalid_request("body must have required property 'public'")
        if not _STORAGE_BUCKET_NAME.fullmatch(bucket_id):
            raise errors.invalid_bucket_name()
        await service.update_bucket(await caller(request), bucket_id, settings)
        return {"message": "Successfully updated"}

    @delete("/bucket/{bucket_id:str}", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def delete_bucket(request: Request[Any, Any, Any], bucket_id: FromPath[str]) -> dict[str, str]:
        """An empty bucket → `{message}`; one with objects: ResourceNotEmpty."""
        await _json_body(request)
        await service.delete_bucket(await caller(request), bucket_id)
        return {"message": "Successfully deleted"}

    @post("/bucket/{bucket_id:str}/empty", status_code=200, request_max_body_size=_JSON_BODY_LIMIT)
    async def empty_bucket(request: Request[Any, Any, Any], bucket_id: FromPath[str]) -> dict[str, str]:
        """Every object of the bucket deleted (the service key only) → Storage's `{message}`."""
        await _json_body(request)
        await service.empty_bucket(await caller(request), bucket_id)
        return {"message": "Empty bucket has been queued. Completion may take up to an hour."}

    return [create_bucket, update_bucket, delete_bucket, empty_bucket]


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


def storage_errors_under(fallback: ExceptionHandler) -> ExceptionHandler:
    """An app's exception handler that answers an unknown route or method under `/storage/v1` (which the
    router's own handler never sees) as Storage does, and everything else with `fallback`: what fails before
    routing, such as a bad Host header, is the app's to answer wherever it was sent."""

    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        path: str = request.scope["path"]
        under_storage = path == STORAGE_PATH or path.startswith(f"{STORAGE_PATH}/")
        if under_storage and isinstance(exc, NotFoundException | MethodNotAllowedException):
            return storage_error_response(request, exc)
        return fallback(request, exc)

    return handler


def storage_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Render any exception in Storage's envelope and HTTP status rule."""
    headers: dict[str, str] = {}
    if isinstance(exc, StorageError):
        error = exc
    elif isinstance(exc, NotFoundException | MethodNotAllowedException):
        # Only routing raises these here: the handlers raise StorageErrors.
        error = errors.route_not_found(request.method, _storage_url(request))
    elif isinstance(exc, ServiceUnavailable):
        error = errors.database_unavailable()
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, TooManyRequests):
        error = errors.busy()
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, PayloadTooLarge):
        # The entry check's, before the body is read: what Storage says of an object past its limit.
        error = errors.entity_too_large()
    elif isinstance(exc, ClientError):
        # The entry check's or the exchange's other refusals (a body too slow, a client gone): the client's to mend.
        error = StorageError(exc.status, "InvalidRequest", exc.detail)
    elif isinstance(exc, HTTPException) and exc.status_code < 500:
        error = (
            errors.entity_too_large()
            if exc.status_code == 413
            else StorageError(exc.status_code, "InvalidRequest", str(exc.detail))
        )
    else:
        # The scope's path: `request.url` is built from the Host header, which may be what is wrong.
        path = request.scope["path"][:_LOGGED_PATH_CHARS]
        log.exception("storage request %s %s failed", request.method, path, exc_info=exc)
        error = errors.internal_error()
    return Response(content=error.body(), status_code=error.http_status, headers=headers)


def _storage_url(request: Request[Any, Any, Any]) -> str:
    """The request's path and query as Storage sees them behind the gateway (no `/storage/v1`), cut short."""
    url = request.scope["path"].removeprefix(STORAGE_PATH) or "/"
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = f"{url}?{query}" if query else url
    return url if len(url) <= _LOGGED_PATH_CHARS else f"{url[:_LOGGED_PATH_CHARS]}..."


def _list_options(body: dict[str, Any]) -> ListOptions:
    """A list's body, checked against Storage's schema (src/http/routes/object/listObjects.ts)."""
    prefix, search, sort_by = body.get("prefix"), body.get("search", ""), body.get("sortBy")
    if not isinstance(prefix, str):
        raise errors.invalid_request("body must have required property 'prefix'")
    if not isinstance(search, str):
        raise errors.invalid_request("body/search must be string")
    column, order = "name", "asc"
    if sort_by is not None:
        if not isinstance(sort_by, dict):
            raise errors.invalid_request("body/sortBy must be object")
        column = _one_of(sort_by.get("column"), "body/sortBy/column", _LIST_SORT_COLUMNS) or "name"
        order = _one_of(sort_by.get("order"), "body/sortBy/order", _SORT_ORDERS) or "asc"
    return ListOptions(
        prefix=prefix,
        limit=_integer(body.get("limit"), "body/limit", 1),
        offset=_integer(body.get("offset"), "body/offset", 0),
        column=column,
        order=order,
        search=search,
    )


def _list_v2_options(body: dict[str, Any]) -> ListV2Options:
    """A list-v2 body, checked against Storage's schema (src/http/routes/object/listObjectsV2.ts)."""
    prefix, cursor, sort_by = body.get("prefix", ""), body.get("cursor"), body.get("sortBy")
    with_delimiter = body.get("with_delimiter", False)
    if not isinstance(prefix, str):
        raise errors.invalid_request("body/prefix must be string")
    if cursor is not None and not isinstance(cursor, str):
        raise errors.invalid_request("body/cursor must be string")
    if not isinstance(with_delimiter, bool):
        raise errors.invalid_request("body/with_delimiter must be boolean")
    column = order = None
    if sort_by is not None:
        if not isinstance(sort_by, dict):
            raise errors.invalid_request("body/sortBy must be object")
        if "column" not in sort_by:
            raise errors.invalid_request("body/sortBy must have required property 'column'")
        column = _one_of(sort_by["column"], "body/sortBy/column", _LIST_V2_SORT_COLUMNS)
        order = _one_of(sort_by.get("order"), "body/sortBy/order", _SORT_ORDERS)
    return ListV2Options(
        prefix=prefix,
        limit=_integer(body.get("limit"), "body/limit", 1),
        cursor=cursor,
        with_delimiter=with_delimiter,
        column=column,
        order=order,
    )


def _integer(value: Any, name: str, minimum: int) -> int | None:
    """An optional integer >= `minimum`, given as a number or as its digits (Storage's schema coerces)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not _INTEGER.fullmatch(str(value)):
        raise errors.invalid_request(f"{name} must be integer")
    number = int(value)
    if number < minimum:
        raise errors.invalid_request(f"{name} must be >= {minimum}")
    return number


def _one_of(value: Any, name: str, allowed: tuple[str, ...]) -> str | None:
    """An optional value of an enum in Storage's schema."""
    if value is None:
        return None
    if value not in allowed:
        raise errors.invalid_request(f"{name} must be equal to one of the allowed values")
    return str(value)


def _bucket(row: Mapping[str, Any]) -> dict[str, Any]:
    """A bucket row as Storage serializes it: its schema types `owner` as a string, so a bucket with no
    owner (every one made by a service key, voicegate's included) says `""` (fast-json-stringify's null)."""
    owner = row["owner"]
    return {**row, "owner": "" if owner is None else str(owner)}


def _key(path: Path) -> str:
    # Litestar hands a `path` parameter over as an absolute Path; the object key has no leading slash.
    return str(path).lstrip("/")


def _quoted(bucket: str, key: str) -> str:
    return quote(f"{bucket}/{key}", safe="/")


def _upload_meta(request: Request[Any, Any, Any]) -> UploadMeta:
    length = request.headers.get("content-length")
    return UploadMeta(
        content_type=request.headers.get("content-type"),
        content_length=int(length) if length and length.isdigit() else None,
        cache_control=request.headers.get("cache-control"),
        x_metadata=request.headers.get("x-metadata"),
    )


async def _refuse_nul_in_url(request: Request[Any, Any, Any]) -> None:
    """Refuse a NUL character in the path or the query before any route runs: PostgreSQL's text cannot hold
    one, so it would fail the query as a server error. In the bucket or object name it is the InvalidKey
    Storage answers for a key outside its character set (and the stand-in for a bucket name outside its
    own); in a query parameter, an InvalidRequest naming it. Supabase Storage itself sends some of these to
    its database and answers 500 (its list's search, `GET /bucket`'s search): a 400 is what it means."""
    params = request.path_params
    bucket = str(params.get("bucket", params.get("bucket_id", "")))
    if "\x00" in bucket:
        raise errors.invalid_key(bucket)
    if "path" in params and "\x00" in (key := _key(params["path"])):
        raise errors.invalid_key(f"{bucket}/{key}")
    for name, value in request.query_params.multi_items():
        if "\x00" in name:
            raise errors.invalid_request(f"querystring {_NO_NUL}")
        if "\x00" in value:
            raise errors.invalid_request(f"querystring/{name} {_NO_NUL}")


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
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
        raise errors.invalid_request(f"{field} {_NO_NUL}")
    return value


def _transfer(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """A move's or copy's body (Storage's schema): source bucket and key, destination bucket and key,
    the destination bucket defaulting to the source's."""
    for name in ("bucketId", "sourceKey", "destinationKey"):
        if not isinstance(body.get(name), str):
            raise errors.invalid_request(f"body/{name} is required and must be a string")
    dest_bucket = body.get("destinationBucket") or body["bucketId"]
    if not isinstance(dest_bucket, str):
        raise errors.invalid_request("body/destinationBucket must be a string")
    return body["bucketId"], body["sourceKey"], dest_bucket, body["destinationKey"]


def _expires_in(value: Any) -> int:
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


def _object_headers(stored: StoredObject, file: os.stat_result) -> dict[str, str]:
    """The headers of a download or a HEAD: as Supabase Storage's file backend sends them, from the file itself (its
    size, its modification time and `file_etag`), so bytes changed on disk behind Storage show in what it reports."""
    metadata = stored.metadata
    modified = datetime.fromtimestamp(file.st_mtime_ns / 1e9, tz=UTC)
    return {
        "Content-Type": str(metadata.get("mimetype") or "application/octet-stream"),
        "Content-Length": str(file.st_size),
        "Cache-Control": str(metadata.get("cacheControl") or "no-cache"),
        "ETag": file_etag(file),
        "Last-Modified": format_datetime(modified, usegmt=True),
    }


def _head(stored: StoredObject) -> Response[None]:
    """A HEAD's answer: NoSuchKey when the row's file is gone."""
    try:
        file = stored.file.stat()
    except FileNotFoundError as exc:
        raise errors.no_such_key() from exc
    return Response(content=None, headers=_object_headers(stored, file))


async def _stream(stored: StoredObject, download: str | None) -> Stream:
    """The object's bytes, read from disk in chunks; the file is opened before the response starts so
    a missing file is a clean NoSuchKey rather than a broken response."""
    try:
        handle = await anyio.open_file(stored.file, "rb")
    except FileNotFoundError as exc:
        raise errors.no_such_key() from exc
    # The open handle's, not the path's: a concurrent replace swaps the file, not this handle.
    headers = _object_headers(stored, os.fstat(handle.wrapped.fileno()))
    if download is not None:
        headers["Content-Disposition"] = (
            f"attachment; filename*=UTF-8''{quote(download)}" if download else "attachment;"
        )

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await handle.read(_CHUNK):
                yield chunk
        finally:
            await handle.aclose()

    media_type = headers.pop("Content-Type")
    return Stream(chunks(), media_type=media_type, headers=headers)


def _info(stored: StoredObject) -> dict[str, Any]:
    """Storage's object info shape."""
    row, metadata = stored.row, stored.metadata
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "version": row["version"],
        "bucket_id": row["bucket_id"],
        "size": metadata.get("size"),
        "content_type": metadata.get("mimetype"),
        "cache_control": metadata.get("cacheControl"),
        "etag": metadata.get("eTag"),
        "metadata": row["user_metadata"],
        "last_modified": row["updated_at"],
        "created_at": row["created_at"],
    }
