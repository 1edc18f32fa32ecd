"""Supabase Storage's object routes (reference §1.2) as a Litestar router mounted at `/storage/v1`.

Only what voicegate and the stock clients use: signed upload and download URLs, authenticated upload,
download, HEAD, info, delete, move and copy. Every error is Storage's envelope with Storage's HTTP status rule,
because storage3 and storage-js parse it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import msgspec
from litestar import Request, Response, Router, delete, get, head, post, put, route
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from backend.db.pool import Pool
from backend.embedded.storage import errors
from backend.embedded.storage.errors import StorageError
from backend.embedded.storage.service import StorageService, StoredObject, UploadMeta
from backend.errors import ServiceUnavailable, TooManyRequests

log = logging.getLogger(__name__)

VerifyJwt = Callable[[str], Awaitable[Mapping[str, Any]]]
_CHUNK = 64 * 1024
# JSON bodies here are a handful of fields; uploads stream and set their own limit (None).
_JSON_BODY_LIMIT = 1024 * 1024
#: The latest expiry a signed URL may have: 9999-12-31T23:59:59Z, the last instant an HTTP date (its
#: `Expires` header) can name. Storage's own bound is where a JavaScript date ends (its
#: `assertValidNumericJWTExpiration`); past either, `expiresIn` is an InvalidParameter, not a 500.
LATEST_EXPIRY = 253402300799
# Paths in log lines are cut to this; a refused key can be kilobytes long.
_LOGGED_PATH_CHARS = 200


def storage_router(pool: Pool, signing_secret: str, root_dir: Path, verify_jwt: VerifyJwt) -> Router:
    """The `/storage/v1` router.

    `verify_jwt` turns a bearer token into the caller's claims (`role` is `authenticated` with a `sub`,
    or `service_role`) or raises; `signing_secret` signs the URL tokens (HS256); object bytes live
    under `root_dir`.
    """
    service = StorageService(pool, signing_secret, root_dir)

    async def caller(request: Request[Any, Any, Any]) -> Mapping[str, Any]:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
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
        path="/storage/v1",
        route_handlers=[*_signed_url_handlers(service, caller), *_object_handlers(service, caller)],
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

    @put("/object/upload/sign/{bucket:str}/{path:path}", status_code=200, request_max_body_size=None)
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

    return [create_signed_upload_url, upload_to_signed_url, create_signed_url, get_signed_object]


def _object_handlers(service: StorageService, caller: Caller) -> list[HTTPRouteHandler]:
    """Authenticated upload, download, HEAD, info, delete, move and copy."""

    @route("/object/{bucket:str}/{path:path}", http_method=["POST", "PUT"], status_code=200, request_max_body_size=None)
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
        stored = await service.find(await caller(request), bucket, _key(path))
        return Response(content=None, headers=_object_headers(stored))

    @get(["/object/info/{bucket:str}/{path:path}", "/object/info/authenticated/{bucket:str}/{path:path}"])
    async def object_info(
        request: Request[Any, Any, Any], bucket: FromPath[str], path: FromPath[Path]
    ) -> dict[str, Any]:
        stored = await service.find(await caller(request), bucket, _key(path))
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


def storage_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Render any exception in Storage's envelope and HTTP status rule (reference §1.8)."""
    headers: dict[str, str] = {}
    if isinstance(exc, StorageError):
        error = exc
    elif isinstance(exc, ServiceUnavailable):
        error = errors.database_unavailable()
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, TooManyRequests):
        error = errors.busy()
        headers["Retry-After"] = str(exc.retry_after)
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


async def _json_body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise errors.invalid_request("the body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise errors.invalid_request("the body must be a JSON object")
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


def _object_headers(stored: StoredObject) -> dict[str, str]:
    metadata = stored.metadata
    headers = {
        "Content-Type": str(metadata.get("mimetype") or "application/octet-stream"),
        "Content-Length": str(metadata.get("size", 0)),
        "Cache-Control": str(metadata.get("cacheControl") or "no-cache"),
        "ETag": str(metadata.get("eTag") or ""),
    }
    updated = stored.row.get("updated_at")
    if isinstance(updated, datetime):
        headers["Last-Modified"] = format_datetime(updated.astimezone(UTC), usegmt=True)
    return headers


async def _stream(stored: StoredObject, download: str | None) -> Stream:
    """The object's bytes, read from disk in chunks; the file is opened before the response starts so
    a missing file is a clean NoSuchKey rather than a broken response."""
    try:
        handle = await anyio.open_file(stored.file, "rb")
    except FileNotFoundError as exc:
        raise errors.no_such_key() from exc
    headers = _object_headers(stored)
    # The open handle's size, not the row's: a concurrent replace swaps the file, not this handle.
    headers["Content-Length"] = str(os.fstat(handle.wrapped.fileno()).st_size)
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
    """Storage's object info shape (reference §1.5)."""
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
