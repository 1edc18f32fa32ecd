"""Supabase Storage's routes as a Litestar router mounted at `/storage/v1`, and Storage's envelope for what fails.

What voicegate and the stock clients use: signed upload and download URLs (one or many,
`standins.storage.signed_url_routes`), authenticated upload, download, HEAD, info, delete, move and copy, and the
public-object routes (`standins.storage.object_routes`), list and list-v2 (`standins.storage.list_routes`), and the
bucket routes (`standins.storage.bucket_routes`). Every answer under `/storage/v1`, an unknown route's included
(`storage_errors_under`), is Storage's envelope with Storage's HTTP status rule, because storage3 and storage-js
parse it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router
from litestar.di import Provide
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException

from backend.db.units import Database
from backend.errors import ClientError, PayloadTooLarge, ServiceUnavailable, TooManyRequests
from standins.storage import bucket_routes, errors, list_routes, object_routes, signed_url_routes
from standins.storage.access import StorageAccess
from standins.storage.buckets import BucketService
from standins.storage.errors import StorageError
from standins.storage.listing import ListService
from standins.storage.objects import ObjectService
from standins.storage.route_requests import NO_NUL, StandIn, VerifyJwt, key

log = logging.getLogger(__name__)

ExceptionHandler = Callable[[Request[Any, Any, Any], Exception], Response[Any]]
#: Where the stand-in is mounted, as Supabase mounts Storage behind its gateway.
STORAGE_PATH = "/storage/v1"
# Paths in log lines are cut to this; a refused key can be kilobytes long.
_LOGGED_PATH_CHARS = 200


def storage_router(db: Database, signing_secret: str, root_dir: Path, verify_jwt: VerifyJwt) -> Router:
    """The `/storage/v1` router.

    `verify_jwt` turns a bearer token into the caller's claims (`role` is `authenticated` with a `sub`,
    or `service_role`) or raises; `signing_secret` signs the URL tokens (HS256); object bytes live
    under `root_dir`.
    """
    access = StorageAccess(db, root_dir)
    stand_in = StandIn(
        objects=ObjectService(access, signing_secret),
        lists=ListService(access),
        buckets=BucketService(access),
        verify_jwt=verify_jwt,
    )
    return Router(
        path=STORAGE_PATH,
        route_handlers=[
            *signed_url_routes.HANDLERS,
            *object_routes.HANDLERS,
            *list_routes.HANDLERS,
            *bucket_routes.HANDLERS,
        ],
        dependencies={"stand_in": Provide(lambda: stand_in, sync_to_thread=False, use_cache=True)},
        before_request=_refuse_nul_in_url,
        exception_handlers={Exception: storage_error_response},
        # The OpenAPI schema documents voicegate's own API; this is Supabase's.
        include_in_schema=False,
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
    if "path" in params and "\x00" in (object_key := key(params["path"])):
        raise errors.invalid_key(f"{bucket}/{object_key}")
    for name, value in request.query_params.multi_items():
        if "\x00" in name:
            raise errors.invalid_request(f"querystring {NO_NUL}")
        if "\x00" in value:
            raise errors.invalid_request(f"querystring/{name} {NO_NUL}")


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
