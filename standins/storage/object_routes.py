"""The Storage stand-in's object routes: authenticated upload, download, HEAD, info, delete, move and copy, each
as the caller's RLS lets them, and the public-object routes (download, info, HEAD), which anyone may ask and
every voicegate bucket, being private, answers with Bucket not found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, delete, get, head, post, route
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from backend.body_limit import BODY_LIMIT
from standins.storage import route_responses
from standins.storage.route_requests import (
    JSON_BODY_LIMIT,
    UPLOAD_BODY_LIMIT,
    StandInDep,
    json_body,
    key,
    names,
    transfer,
    upload_meta,
    wants_upsert,
)

_OBJECT = "/object/{bucket:str}/{path:path}"
_AUTHENTICATED = "/object/authenticated/{bucket:str}/{path:path}"


@route(
    _OBJECT,
    http_method=["POST", "PUT"],
    status_code=200,
    request_max_body_size=None,
    opt={BODY_LIMIT: UPLOAD_BODY_LIMIT},
)
async def upload_object(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]
) -> dict[str, str]:
    """POST creates the object (replacing it only with `x-upsert: true`); PUT replaces it."""
    object_key = key(path)
    upsert = request.method == "PUT" or wants_upsert(request)
    claims = await stand_in.claims(request)
    meta, body = upload_meta(request), request.stream()
    object_id = await stand_in.objects.upload(claims, bucket, object_key, meta, body, upsert=upsert)
    return {"Id": object_id, "Key": f"{bucket}/{object_key}"}


@get([_OBJECT, _AUTHENTICATED])
async def download_object(
    request: Request[Any, Any, Any],
    stand_in: StandInDep,
    bucket: FromPath[str],
    path: FromPath[Path],
    download: FromQuery[str | None] = None,
) -> Stream:
    """The object's bytes, if the caller can see it (`download`: as an attachment, by that name)."""
    stored = await stand_in.objects.find(await stand_in.claims(request), bucket, key(path))
    return await route_responses.stream(stored, download)


@head([_OBJECT, _AUTHENTICATED])
async def object_exists(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]
) -> Response[None]:
    """The object's headers, without its bytes."""
    stored = await stand_in.objects.find_info(await stand_in.claims(request), bucket, key(path))
    return route_responses.head(stored)


@get(["/object/info/{bucket:str}/{path:path}", "/object/info/authenticated/{bucket:str}/{path:path}"])
async def object_info(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]
) -> dict[str, Any]:
    """Storage's info about the object."""
    stored = await stand_in.objects.find_info(await stand_in.claims(request), bucket, key(path))
    return route_responses.info(stored)


@delete(_OBJECT, status_code=200)
async def delete_object(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]
) -> dict[str, str]:
    """One object deleted, if the caller may."""
    await stand_in.objects.delete_one(await stand_in.claims(request), bucket, key(path))
    return {"message": "Successfully deleted"}


@delete("/object/{bucket:str}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def delete_objects(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str]
) -> list[dict[str, Any]]:
    """`{prefixes}`: the objects the caller may delete among those named, deleted and returned."""
    prefixes = names(await json_body(request), "prefixes")
    return await stand_in.objects.delete(await stand_in.claims(request), bucket, prefixes)


@post("/object/move", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def move_object(request: Request[Any, Any, Any], stand_in: StandInDep) -> dict[str, str]:
    """`{bucketId, sourceKey, destinationKey, destinationBucket?}`: rename, under the caller's RLS."""
    bucket, source, dest_bucket, dest = transfer(await json_body(request))
    object_id = await stand_in.objects.move(await stand_in.claims(request), bucket, source, dest_bucket, dest)
    return {"message": "Successfully moved", "Id": object_id, "Key": dest}


@post("/object/copy", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def copy_object(request: Request[Any, Any, Any], stand_in: StandInDep) -> dict[str, str]:
    """The same body; the copy replaces an object only with `x-upsert: true`."""
    bucket, source, dest_bucket, dest = transfer(await json_body(request))
    claims = await stand_in.claims(request)
    object_id = await stand_in.objects.copy(claims, bucket, source, dest_bucket, dest, upsert=wants_upsert(request))
    return {"Id": object_id, "Key": f"{dest_bucket}/{dest}"}


@get("/object/info/public/{bucket:str}/{path:path}")
async def public_object_info(stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]) -> dict[str, Any]:
    """An object of a public bucket's info, for anyone; a bucket that is not public: Bucket not found."""
    return route_responses.info(await stand_in.objects.find_public(bucket, key(path)))


@head("/object/public/{bucket:str}/{path:path}")
async def public_object_exists(stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path]) -> Response[None]:
    """HEAD of an object of a public bucket, for anyone (Storage's `publicRoutes`)."""
    return route_responses.head(await stand_in.objects.find_public(bucket, key(path)))


@get("/object/public/{bucket:str}/{path:path}")
async def get_public_object(
    stand_in: StandInDep, bucket: FromPath[str], path: FromPath[Path], download: FromQuery[str | None] = None
) -> Stream:
    """An object of a public bucket, for anyone; every voicegate bucket is private, so: Bucket not found."""
    return await route_responses.stream(await stand_in.objects.find_public(bucket, key(path)), download)


#: This module's route handlers, for the router.
HANDLERS = [
    upload_object,
    download_object,
    object_exists,
    object_info,
    delete_object,
    delete_objects,
    move_object,
    copy_object,
    public_object_info,
    public_object_exists,
    get_public_object,
]
