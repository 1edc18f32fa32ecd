"""How the Storage stand-in takes in an object's bytes: the body streams to a temporary file while the bucket's
size limit and MIME allow-list are enforced, then the file is renamed into place inside the transaction that
writes its row, so a failed write leaves neither. A raw body's headers, or a multipart form's fields, say what
Storage records besides the bytes."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncIterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from anyio import AsyncFile
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from backend.db.connection import Connection
from backend.errors import InvalidJson
from backend.fields import holds_nul
from backend.json_body import read_json
from backend.multipart import FormError, Part, form_boundary, read_form
from standins.private_files import make_private_dirs, private_opener
from standins.storage import errors
from standins.storage.access import StorageAccess, StoredObject, lock_object, unlink
from standins.storage.rules import GLOBAL_FILE_SIZE_LIMIT, file_etag, mime_allowed

_CHUNK = 64 * 1024
_MAX_FORM_FIELD = 64 * 1024


@dataclass(frozen=True)
class UploadMeta:
    """What the request says about the body besides its bytes."""

    content_type: str | None
    content_length: int | None
    cache_control: str | None
    x_metadata: str | None


@dataclass
class Received:
    """A body written to a temporary file, with what Storage records about it."""

    temp_path: Path
    size: int = 0
    mimetype: str = "application/octet-stream"
    cache_control: str = "no-cache"
    user_metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Placement:
    """Where a received body goes, and as whom: the object, its owner, and whether it may replace one."""

    bucket: str
    path: str
    owner: str | None
    upsert: bool


async def receive(access: StorageAccess, bucket_id: str, meta: UploadMeta, body: AsyncIterable[bytes]) -> Received:
    """Stream the body to a temporary file, enforcing the bucket's MIME list and size limit."""
    bucket = await access.bucket(bucket_id)
    limit = min(GLOBAL_FILE_SIZE_LIMIT, bucket.file_size_limit or GLOBAL_FILE_SIZE_LIMIT)
    multipart_body = (meta.content_type or "").lower().startswith("multipart/form-data")
    # A raw body's announced length is its size; a multipart one also counts the framing.
    if meta.content_length is not None and meta.content_length > limit and not multipart_body:
        raise errors.entity_too_large()
    received = Received(temp_path=await access.temp_path())
    try:
        async with await anyio.open_file(received.temp_path, "wb", opener=private_opener) as out:
            sink = _Sink(out, received, limit)
            if multipart_body:
                await _receive_multipart(received, meta, body, sink, bucket.allowed_mime_types)
                _refuse_nul(received)
            else:
                _receive_raw_meta(received, meta, bucket.allowed_mime_types)
                _refuse_nul(received)
                async for chunk in body:
                    await sink.write(chunk)
    except BaseException:
        await unlink(received.temp_path)
        raise
    return received


async def copied(access: StorageAccess, original: StoredObject) -> Received:
    """The object's bytes copied to a temporary file, with the metadata a copy keeps."""
    metadata = original.metadata
    received = Received(
        temp_path=await access.temp_path(),
        mimetype=str(metadata.get("mimetype") or "application/octet-stream"),
        cache_control=str(metadata.get("cacheControl") or "no-cache"),
        user_metadata=original.row["user_metadata"],
    )
    try:
        async with (
            await anyio.open_file(original.file, "rb") as source,
            await anyio.open_file(received.temp_path, "wb", opener=private_opener) as out,
        ):
            sink = _Sink(out, received, GLOBAL_FILE_SIZE_LIMIT)
            while chunk := await source.read(_CHUNK):
                await sink.write(chunk)
    except FileNotFoundError as exc:
        await unlink(received.temp_path)
        raise errors.no_such_key() from exc
    except BaseException:
        await unlink(received.temp_path)
        raise
    return received


async def commit(
    access: StorageAccess,
    transaction: AbstractAsyncContextManager[Connection],
    place: Placement,
    received: Received,
) -> str:
    """Write the row and move the file into place in one transaction; clean up on failure. Returns the
    object's id."""
    metadata = _system_metadata(received)
    target = access.file(place.bucket, place.path)
    try:
        async with transaction as conn:
            await lock_object(conn, place.bucket, place.path)
            object_id = await write_row(conn, place, metadata, received.user_metadata)
            await anyio.to_thread.run_sync(make_private_dirs, target.parent)
            # Same filesystem, so the rename is atomic: a reader sees the old bytes or the new.
            await anyio.Path(received.temp_path).replace(target)
    finally:
        await unlink(received.temp_path)
    return object_id


def _system_metadata(received: Received) -> dict[str, Any]:
    """What Storage records of the bytes in the row's `metadata`."""
    return {
        # A rename keeps the file's modification time: the ETag reads the same once the file is in place.
        "eTag": file_etag(received.temp_path.stat()),
        "size": received.size,
        "mimetype": received.mimetype,
        "cacheControl": received.cache_control,
        "lastModified": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "contentLength": received.size,
        "httpStatusCode": 200,
    }


async def write_row(
    conn: Connection, place: Placement, metadata: dict[str, Any], user_metadata: dict[str, Any] | None
) -> str:
    """Insert the object's row (or with `place.upsert` replace it), as whoever `conn` runs as; returns its id.
    AlreadyExists when it is there and may not be replaced."""
    values = (
        place.bucket,
        place.path,
        place.owner,
        Jsonb(metadata),
        None if user_metadata is None else Jsonb(user_metadata),
        uuid.uuid4().hex,
    )
    insert = (
        "insert into storage.objects (bucket_id, name, owner_id, metadata, user_metadata, version)"
        " values (%s, %s, %s, %s, %s, %s)"
    )
    conflict = (
        " on conflict (bucket_id, name) do update set owner_id = excluded.owner_id, metadata = excluded.metadata,"
        " user_metadata = excluded.user_metadata, version = excluded.version, updated_at = now()"
        if place.upsert
        else ""
    )
    try:
        cur = await conn.execute(insert + conflict + " returning id", values)
    except pg_errors.UniqueViolation as exc:
        raise errors.already_exists() from exc
    except pg_errors.InsufficientPrivilege as exc:
        # A write the service makes (a signed upload) meets no policy, only the erasure's fence.
        raise errors.denied_by_database(exc) from exc
    row = await cur.fetchone()
    assert row is not None  # noqa: S101 - insert ... returning always yields the row
    return str(row["id"])


def _refuse_nul(received: Received) -> None:
    """What is kept of the request besides its bytes goes into `jsonb` columns, which cannot hold a NUL."""
    if holds_nul([received.mimetype, received.cache_control, received.user_metadata]):
        raise errors.invalid_request("the content type, cache control and metadata must not contain a NUL character")


def _receive_raw_meta(received: Received, meta: UploadMeta, allowed: list[str] | None) -> None:
    """Raw body: the content-type header is the MIME type, headers carry cache control and metadata."""
    received.mimetype = meta.content_type or "application/octet-stream"
    if not mime_allowed(received.mimetype, allowed):
        raise errors.invalid_mime_type(received.mimetype)
    received.cache_control = meta.cache_control or "no-cache"
    if meta.x_metadata:
        try:
            received.user_metadata = _json_object(base64.b64decode(meta.x_metadata, validate=True))
        except (binascii.Error, TypeError, ValueError) as exc:
            raise errors.invalid_request("x-metadata must be base64 of a JSON object") from exc


async def _receive_multipart(
    received: Received,
    meta: UploadMeta,
    body: AsyncIterable[bytes],
    sink: _Sink,
    allowed: list[str] | None,
) -> None:
    """Multipart body: one file part (its type, or a `contentType` field, is the MIME type), plus the
    `cacheControl` and `metadata` fields, as storage-js and storage3 send them."""
    boundary = form_boundary(meta.content_type)
    if boundary is None:
        raise errors.invalid_request("multipart body without a boundary")
    form = _StorageForm(allowed, sink)
    try:
        await read_form(body, boundary, form, max_parts=16, max_field_bytes=_MAX_FORM_FIELD)
    except FormError as exc:
        raise errors.invalid_request(str(exc)) from exc
    if form.files == 0:
        raise errors.invalid_request("the multipart body has no file")
    received.mimetype = form.mimetype()
    # A `contentType` field after the file part still sets the MIME type; check the final one too.
    if not mime_allowed(received.mimetype, allowed):
        raise errors.invalid_mime_type(received.mimetype)
    cache = form.fields.get("cacheControl", b"").decode(errors="replace")
    received.cache_control = f"max-age={cache}" if cache else "no-cache"
    if form.fields.get("metadata"):
        try:
            received.user_metadata = _json_object(form.fields["metadata"])
        except (TypeError, ValueError) as exc:
            raise errors.invalid_request("metadata must be a JSON object") from exc


class _Sink:
    """The temporary file a body streams into: counts, hashes and stops at the size limit."""

    def __init__(self, out: AsyncFile[bytes], received: Received, limit: int) -> None:
        self._out = out
        self._received = received
        self._limit = limit

    async def write(self, chunk: bytes) -> None:
        """Append `chunk`, or raise EntityTooLarge once the body passes the limit."""
        self._received.size += len(chunk)
        if self._received.size > self._limit:
            raise errors.entity_too_large()
        await self._out.write(chunk)


class _StorageForm:
    """Storage's form: the one part with a file name goes to the sink, small fields are kept."""

    def __init__(self, allowed: list[str] | None, sink: _Sink) -> None:
        self._allowed = allowed
        self._sink = sink
        self._part_type: str | None = None
        self.files = 0
        self.fields: dict[str, bytes] = {}

    def mimetype(self) -> str:
        """Storage's rule: the `contentType` field, else the file part's type."""
        declared = self.fields.get("contentType", b"").decode(errors="replace")
        return declared or self._part_type or "application/octet-stream"

    def start(self, part: Part) -> bool:
        """A file part (it has a file name) is streamed to the sink; anything else is a field."""
        if part.filename is None:
            return False
        self.files += 1
        if self.files > 1:
            raise errors.invalid_request("only one file may be uploaded")
        self._part_type = part.content_type
        # Refuse a disallowed type before any of its bytes reach the disk.
        if not mime_allowed(self.mimetype(), self._allowed):
            raise errors.invalid_mime_type(self.mimetype())
        return True

    async def file_chunk(self, chunk: bytes) -> None:
        """Into the sink, which enforces the size limit."""
        await self._sink.write(chunk)

    def field(self, name: str, value: bytes) -> None:
        """Kept for `contentType`, `cacheControl` and `metadata`."""
        self.fields[name] = value


def _json_object(raw: bytes) -> dict[str, Any]:
    """User metadata as JSON (checked for its encoding and depth first, as request bodies are); ValueError
    when it is not a JSON object."""
    try:
        value = read_json(raw)
    except InvalidJson as exc:
        raise ValueError(exc.detail) from None
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value
