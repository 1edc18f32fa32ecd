"""What the Storage stand-in's routes answer about an object or a bucket, in Storage's shapes: an object's bytes
streamed from disk, a HEAD's headers, an object's info, a bucket row."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import anyio
from litestar import Response
from litestar.response import Stream

from standins.storage import errors
from standins.storage.access import StoredObject
from standins.storage.rules import file_etag

_CHUNK = 64 * 1024


def object_headers(stored: StoredObject, file: os.stat_result) -> dict[str, str]:
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


def head(stored: StoredObject) -> Response[None]:
    """A HEAD's answer: NoSuchKey when the row's file is gone."""
    try:
        file = stored.file.stat()
    except FileNotFoundError as exc:
        raise errors.no_such_key() from exc
    return Response(content=None, headers=object_headers(stored, file))


async def stream(stored: StoredObject, download: str | None) -> Stream:
    """The object's bytes, read from disk in chunks; the file is opened before the response starts so
    a missing file is a clean NoSuchKey rather than a broken response."""
    try:
        handle = await anyio.open_file(stored.file, "rb")
    except FileNotFoundError as exc:
        raise errors.no_such_key() from exc
    # The open handle's, not the path's: a concurrent replace swaps the file, not this handle.
    headers = object_headers(stored, os.fstat(handle.wrapped.fileno()))
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


def info(stored: StoredObject) -> dict[str, Any]:
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


def bucket(row: Mapping[str, Any]) -> dict[str, Any]:
    """A bucket row as Storage serializes it: its schema types `owner` as a string, so a bucket with no
    owner (every one made by a service key, voicegate's included) says `""` (fast-json-stringify's null)."""
    owner = row["owner"]
    return {**row, "owner": "" if owner is None else str(owner)}
