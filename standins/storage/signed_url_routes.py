"""The Storage stand-in's signed URLs: signing upload and download URLs (one or many), and using them. Whoever
holds a URL's token uses it without a bearer token of their own."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from litestar import Request, get, post, put
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from backend.body_limit import BODY_LIMIT
from standins.storage import errors, route_responses
from standins.storage.route_requests import (
    JSON_BODY_LIMIT,
    LATEST_EXPIRY,
    UPLOAD_BODY_LIMIT,
    StandInDep,
    expires_in,
    json_body,
    key,
    names,
    quoted,
    upload_meta,
    wants_upsert,
)


@post("/object/upload/sign/{bucket:str}/{path:path}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def create_signed_upload_url(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]
) -> dict[str, str]:
    """An upload URL for an object the caller could upload now (`x-upsert: true`: replace one)."""
    object_key = key(path)
    claims = await stand_in.claims(request)
    token = await stand_in.objects.sign_upload(claims, bucket, object_key, upsert=wants_upsert(request))
    return {"url": f"/object/upload/sign/{quoted(bucket, object_key)}?token={token}", "token": token}


@put(
    "/object/upload/sign/{bucket:str}/{path:path}",
    status_code=200,
    request_max_body_size=None,
    opt={BODY_LIMIT: UPLOAD_BODY_LIMIT},
)
async def upload_to_signed_url(
    request: Request[Any, Any, Any],
    stand_in: StandInDep,
    bucket: FromPath[str],
    path: FromPath[Path],
    token: FromQuery[str | None] = None,
) -> dict[str, str]:
    """The body stored under the URL's token, with the owner and upsert it carries."""
    object_key = key(path)
    if not token:
        raise errors.invalid_jwt("Missing token")
    await stand_in.objects.upload_signed(bucket, object_key, token, upload_meta(request), request.stream())
    return {"Key": f"{bucket}/{object_key}"}


@post("/object/sign/{bucket:str}/{path:path}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def create_signed_url(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]
) -> dict[str, str]:
    """`{expiresIn}`: a download URL for an object the caller can see."""
    object_key = key(path)
    seconds = expires_in((await json_body(request)).get("expiresIn"))
    token = await stand_in.objects.sign_download(await stand_in.claims(request), bucket, object_key, seconds)
    return {"signedURL": f"/object/sign/{quoted(bucket, object_key)}?token={token}"}


@post("/object/sign/{bucket:str}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def create_signed_urls(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str]
) -> list[dict[str, str | None]]:
    """`{expiresIn, paths}`: a download URL for each path the caller can see, an error for each other."""
    body = await json_body(request)
    seconds = expires_in(body.get("expiresIn"))
    paths = names(body, "paths")
    return await stand_in.objects.sign_downloads(await stand_in.claims(request), bucket, paths, seconds)


@get("/object/sign/{bucket:str}/{path:path}")
async def get_signed_object(
    stand_in: StandInDep,
    bucket: FromPath[str],
    path: FromPath[Path],
    token: FromQuery[str | None] = None,
    download: FromQuery[str | None] = None,
) -> Stream:
    """The object a download URL names, with the `Expires` its token sets."""
    object_key = key(path)
    if not token:
        raise errors.invalid_jwt("Missing token")
    stored, expires_at = await stand_in.objects.find_signed(bucket, object_key, token)
    response = await route_responses.stream(stored, download)
    # Clamped: a token signed elsewhere with the same secret may claim an expiry no date can hold.
    expires = datetime.fromtimestamp(min(expires_at, LATEST_EXPIRY), tz=UTC)
    response.headers["Expires"] = format_datetime(expires, usegmt=True)
    return response


#: This module's route handlers, for the router.
HANDLERS = [create_signed_upload_url, upload_to_signed_url, create_signed_url, create_signed_urls, get_signed_object]
