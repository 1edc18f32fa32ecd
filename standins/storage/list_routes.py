"""The Storage stand-in's lists of a bucket's objects: list (one folder level) and list-v2 (pages, continued by
a cursor), their bodies checked against Storage's schemas."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.params import FromPath

from standins.storage import errors
from standins.storage.listing import ListOptions, ListV2Options
from standins.storage.route_requests import JSON_BODY_LIMIT, SORT_ORDERS, StandInDep, integer, json_body, one_of

_LIST_SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")
_LIST_V2_SORT_COLUMNS = ("name", "updated_at", "created_at")


@post("/object/list/{bucket:str}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def list_objects(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str]
) -> list[dict[str, Any]]:
    """`{prefix, limit?, offset?, sortBy?: {column, order?}, search?}`: one folder level, under RLS."""
    options = _list_options(await json_body(request))
    return await stand_in.lists.list_objects(await stand_in.claims(request), bucket, options)


@post("/object/list-v2/{bucket:str}", status_code=200, request_max_body_size=JSON_BODY_LIMIT)
async def list_objects_v2(
    request: Request[Any, Any, Any], stand_in: StandInDep, bucket: FromPath[str]
) -> dict[str, Any]:
    """`{prefix?, limit?, cursor?, with_delimiter?, sortBy?: {column, order?}}`: a page under RLS, with
    `hasNext` and the `nextCursor` that continues it; one folder level with `with_delimiter`."""
    options = _list_v2_options(await json_body(request))
    return await stand_in.lists.list_objects_v2(await stand_in.claims(request), bucket, options)


#: This module's route handlers, for the router.
HANDLERS = [list_objects, list_objects_v2]


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
        column = one_of(sort_by.get("column"), "body/sortBy/column", _LIST_SORT_COLUMNS) or "name"
        order = one_of(sort_by.get("order"), "body/sortBy/order", SORT_ORDERS) or "asc"
    return ListOptions(
        prefix=prefix,
        limit=integer(body.get("limit"), "body/limit", 1),
        offset=integer(body.get("offset"), "body/offset", 0),
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
        column = one_of(sort_by["column"], "body/sortBy/column", _LIST_V2_SORT_COLUMNS)
        order = one_of(sort_by.get("order"), "body/sortBy/order", SORT_ORDERS)
    return ListV2Options(
        prefix=prefix,
        limit=integer(body.get("limit"), "body/limit", 1),
        cursor=cursor,
        with_delimiter=with_delimiter,
        column=column,
        order=order,
    )
