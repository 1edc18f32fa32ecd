"""The Storage stand-in's lists of a bucket's objects, as the caller's RLS shows them: Storage's list (one folder
level) and list-v2 (pages, continued by Storage's own continuation token)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.db.execute import fetch_all
from backend.db.queries import load_queries
from standins.storage import errors
from standins.storage.access import Claims, StorageAccess
from standins.storage.rules import escape_like

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: Storage's default and most objects and folders in one list-v2 page (src/storage/object.ts `listObjectsV2`).
MAX_LIST_V2_KEYS = 1000
# A list-v2 continuation token's line keys (Storage's `CONTINUATION_TOKEN_PART_MAP`).
_CURSOR_PARTS = {"l": "start_after", "o": "order", "c": "column", "a": "after"}
_CURSOR_PART = re.compile(r"(\S):(.*)")
_TIMESTAMP_COLUMNS = ("created_at", "updated_at")


@dataclass(frozen=True)
class ListOptions:
    """A list's options as Storage's `POST /object/list/{bucket}` takes them (src/http/routes/object/listObjects.ts)."""

    prefix: str
    limit: int | None = None
    offset: int | None = None
    column: str = "name"
    order: str = "asc"
    search: str = ""


@dataclass(frozen=True)
class ListV2Options:
    """`POST /object/list-v2/{bucket}`'s body (src/http/routes/object/listObjectsV2.ts): `column` and `order`
    are `sortBy`'s, None when not given."""

    prefix: str = ""
    limit: int | None = None
    cursor: str | None = None
    with_delimiter: bool = False
    column: str | None = None
    order: str | None = None


@dataclass(frozen=True)
class _Cursor:
    """A list-v2 continuation token's parts (src/storage/object.ts `ContinuationToken`)."""

    start_after: str = ""
    order: str = "asc"
    column: str | None = None
    after: str | None = None


class ListService:
    """Storage's lists of a bucket's objects over one database."""

    def __init__(self, access: StorageAccess) -> None:
        self._access = access

    async def list_objects(self, claims: Claims, bucket: str, options: ListOptions) -> list[dict[str, Any]]:
        """One folder level of the bucket under `options.prefix`, as the caller's RLS shows it: Storage's
        `searchObjects` (src/storage/object.ts, src/storage/database/pg.ts) over its own `storage.search`.
        A bucket that does not exist lists empty, as there."""
        prefix = options.prefix
        if prefix and not prefix.endswith("/"):
            # Storage takes the prefix to be a folder.
            prefix += "/"
        search = options.search
        if options.column != "name":
            prefix, search = escape_like(prefix), escape_like(search)
        params = {
            "prefix": prefix,
            "bucket": bucket,
            "limit": options.limit or 100,
            "levels": len((prefix + search).split("/")),
            "offset": options.offset or 0,
            "search": search,
            "column": options.column,
            "order": options.order,
        }
        async with self._access.as_caller(claims) as conn:
            return await fetch_all(conn, _Q["search"], params)

    async def list_objects_v2(self, claims: Claims, bucket: str, options: ListV2Options) -> dict[str, Any]:
        """A page of the bucket under `options.prefix`, as the caller's RLS shows it: Storage's `listObjectsV2`
        (src/storage/object.ts). Without the delimiter every object under the prefix; with it one level, its
        folders and objects (Storage's `storage.search_v2`). One row more than the page is read to know whether
        another follows; the cursor is Storage's continuation token, whose sort wins over the body's."""
        limit = min(options.limit or MAX_LIST_V2_KEYS, MAX_LIST_V2_KEYS)
        cursor = _decode_cursor(options.cursor) if options.cursor else None
        order = cursor.order if cursor else options.order
        column = (cursor.column if cursor else None) or options.column
        start = _Cursor(
            start_after=cursor.start_after if cursor else "",
            order=order or "",
            column=column,
            after=cursor.after if cursor else None,
        )
        async with self._access.as_caller(claims) as conn:
            if options.with_delimiter:
                params = _search_v2_params(bucket, options.prefix, limit, start)
                rows = _delimited(await fetch_all(conn, _Q["search_v2"], params), options.prefix)
            else:
                rows = await fetch_all(conn, _Q["list_v2"], _list_v2_params(bucket, options.prefix, limit, start))
        return _list_v2_page(rows, limit, order, column)


def _search_v2_params(bucket: str, prefix: str, limit: int, start: _Cursor) -> dict[str, Any]:
    """`search_v2`'s arguments for one folder level, from where the page starts."""
    return {
        "prefix": prefix,
        "bucket": bucket,
        "limit": limit + 1,
        "levels": len(prefix.split("/")) if prefix else 1,
        "start_after": start.start_after,
        "order": start.order or "asc",
        "column": start.column or "name",
        "after": start.after or None,
    }


def _list_v2_params(bucket: str, prefix: str, limit: int, start: _Cursor) -> dict[str, Any]:
    """`list_v2`'s parameters for every object under the prefix, from where the page starts."""
    return {
        "bucket": bucket,
        "pattern": escape_like(prefix) + "%",
        "start_after": start.start_after or None,
        "column": start.column if start.column in _TIMESTAMP_COLUMNS else None,
        "order": start.order if start.order in ("asc", "desc") else "asc",
        "after": start.after or None,
        "limit": limit + 1,
    }


def _decode_cursor(token: str) -> _Cursor:
    """Storage's `decodeContinuationToken`: base64 of `key:value` lines; anything else is an InvalidParameter.
    A value PostgreSQL cannot take (a NUL, a timestamp that is not one) is refused here, not failed there."""
    try:
        text = base64.b64decode(token.rstrip("=") + "=" * (-len(token.rstrip("=")) % 4)).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        raise errors.invalid_parameter("continuation token") from None
    parts: dict[str, str] = {}
    for line in text.split("\n"):
        match = _CURSOR_PART.match(line)
        if match is None or match[1] not in _CURSOR_PARTS or "\x00" in match[2]:
            raise errors.invalid_parameter("continuation token")
        parts[_CURSOR_PARTS[match[1]]] = match[2]
    if parts.get("after"):
        try:
            datetime.fromisoformat(parts["after"])
        except ValueError:
            raise errors.invalid_parameter("continuation token") from None
    return _Cursor(**parts)


def _encode_cursor(cursor: _Cursor) -> str:
    """Storage's `encodeContinuationToken`: the parts that are set, one `key:value` line each, in base64."""
    values = {"l": cursor.start_after, "o": cursor.order, "c": cursor.column, "a": cursor.after}
    return base64.b64encode("\n".join(f"{key}:{value}" for key, value in values.items() if value).encode()).decode()


def _delimited(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Storage's delimiter pass over `search_v2`'s rows (src/storage/object.ts): a name with a `/` past the
    prefix stands for its folder, once."""
    delimited: list[dict[str, Any]] = []
    previous = ""
    for row in rows:
        index = row["name"].replace(prefix, "", 1).find("/")
        if index < 0:
            delimited.append(row)
            continue
        folder = row["name"][: len(prefix) + index + 1]
        if folder != previous:
            previous = folder
            delimited.append({"id": None, "name": folder})
    return delimited


def _list_v2_page(rows: list[dict[str, Any]], limit: int, order: str | None, column: str | None) -> dict[str, Any]:
    """Storage's list-v2 answer from up to `limit + 1` rows: folders (no id; the name ends in `/`) and objects,
    and when more follow, the token that continues after the page's last row."""
    page = rows[:limit]
    folders = [
        {**row, "name": row["name"] if row["name"].endswith("/") else row["name"] + "/"}
        for row in page
        if row["id"] is None
    ]
    objects = [row for row in page if row["id"] is not None]
    if len(rows) <= limit:
        return {"hasNext": False, "folders": folders, "objects": objects}
    last = page[-1]
    stamp = last.get(column) if column in _TIMESTAMP_COLUMNS else None
    after = stamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if stamp else None
    token = _encode_cursor(_Cursor(start_after=last["name"], order=order or "", column=column, after=after))
    return {"hasNext": True, "nextCursor": token, "nextCursorKey": last["name"], "folders": folders, "objects": objects}
