"""The local Storage stand-in: object rows in `storage.objects`, bytes under `root_dir/<bucket>/<path>`.

It behaves as Supabase Storage does where voicegate can observe it: the caller's own
role and claims decide, through the same RLS policies, what they may sign, read and delete; signed
URLs carry Storage's JWTs; the bucket's size limit and MIME allow-list are enforced while the body
streams in. The database row is the authority: a file is renamed into place inside the transaction
that writes its row, so a failed write leaves neither, and files are removed only after the rows'
deletion committed (an orphan file is harmless, a row without its file is not). Files are users' voice
recordings: each is 0600 in directories 0700, whatever the umask.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio import AsyncFile
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.errors import InvalidJson
from backend.fields import holds_nul
from backend.json_body import read_json
from backend.multipart import FormError, Part, form_boundary, read_form
from standins.private_files import make_private_dirs, private_opener
from standins.storage import errors
from standins.storage.tokens import (
    sign_download_token,
    sign_upload_token,
    verify_download_token,
    verify_upload_token,
)

Claims = Mapping[str, Any]

_Q = load_queries(Path(__file__).with_suffix(".sql"))

# Supabase Storage's `isValidKey` character set (src/storage/limits.ts, ASCII only as JavaScript's
# `\w` is); `.`/`..` and empty segments are refused on top of it because the key becomes a file path here.
_VALID_KEY = re.compile(r"[\w/!\-.*'() &$@=;:+,?]+", re.ASCII)
#: Storage itself sets no length limits, but its key becomes a file path here: Linux refuses a path
#: segment over 255 bytes (NAME_MAX), and S3, under hosted Storage, a key over 1024 bytes (a valid key
#: is ASCII, so its characters are its bytes). Refusing them up front makes a too-long name an
#: InvalidKey before anything is signed or written, not a 500.
MAX_KEY_SEGMENT_BYTES = 255
MAX_KEY_BYTES = 1024
_VALID_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_CHUNK = 64 * 1024
_MAX_FORM_FIELD = 64 * 1024
# How long a signed upload URL lasts: the Supabase CLI's 7200 s.
_UPLOAD_URL_EXPIRES_IN = 7200
#: No upload may exceed this whatever its bucket allows (nor may a bucket's limit): hosted Storage's free plan.
GLOBAL_FILE_SIZE_LIMIT = 50 * 1024**2
#: Where bodies stream to before they are moved into place (a name no bucket can have).
UPLOADS_DIR = ".uploads"
#: Storage's default and most objects and folders in one list-v2 page (src/storage/object.ts `listObjectsV2`).
MAX_LIST_V2_KEYS = 1000
# A list-v2 continuation token's line keys (Storage's `CONTINUATION_TOKEN_PART_MAP`).
_CURSOR_PARTS = {"l": "start_after", "o": "order", "c": "column", "a": "after"}
_CURSOR_PART = re.compile(r"(\S):(.*)")
_TIMESTAMP_COLUMNS = ("created_at", "updated_at")
#: Storage's `SIGNED_URL_SCOPE_DOWNLOAD` answer for a path it does not sign (src/storage/object.ts `signObjectUrls`).
NOT_SIGNED = "Either the object does not exist or you do not have access to it"
# Storage runs a request without a user as `anon` (src/internal/database/pg-connection.ts), in a transaction
# that says so as PostgREST does.
_AS_ANON = "select set_config('role', 'anon', true), set_config('request.jwt.claims', %(claims)s, true)"
_OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, created_at, updated_at, last_accessed_at, metadata, user_metadata"
)
_OBJECT_COLUMN_NAMES = tuple(_OBJECT_COLUMNS.split(", "))
#: Why a signed download of an erased user's object is refused.
ERASED = "The user whose folder this is has been erased."


@dataclass(frozen=True)
class Bucket:
    """The limits a bucket row sets."""

    file_size_limit: int | None
    allowed_mime_types: list[str] | None


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


@dataclass(frozen=True)
class BucketListOptions:
    """`GET /bucket`'s query (src/http/routes/bucket/getAllBuckets.ts); `column` None lists unsorted."""

    limit: int | None = None
    offset: int | None = None
    column: str | None = None
    order: str = "asc"
    search: str = ""


@dataclass(frozen=True)
class BucketSettings:
    """A bucket's settings as `POST /bucket` gives them, or the ones `PUT /bucket/{id}` changes (`given`: which
    of `public`, `file_size_limit` and `allowed_mime_types` it names; a null limit or list removes it)."""

    public: bool = False
    file_size_limit: int | None = None
    allowed_mime_types: list[str] | None = None
    given: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UploadMeta:
    """What the request says about the body besides its bytes."""

    content_type: str | None
    content_length: int | None
    cache_control: str | None
    x_metadata: str | None


@dataclass
class _Received:
    """A body written to a temporary file, with what Storage records about it."""

    temp_path: Path
    size: int = 0
    mimetype: str = "application/octet-stream"
    cache_control: str = "no-cache"
    user_metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredObject:
    """An object row and where its bytes are."""

    row: dict[str, Any]
    file: Path

    @property
    def metadata(self) -> dict[str, Any]:
        """Storage's system metadata (`eTag`, `size`, `mimetype`, ...)."""
        value = self.row.get("metadata") or {}
        return value if isinstance(value, dict) else {}


def file_etag(file: os.stat_result) -> str:
    """An object's ETag as Supabase Storage's file backend makes it under its `mtime` algorithm, from the file's
    modification time and size: it changes whenever the bytes do, on disk too, and costs a `stat`, not a read."""
    return f'"{file.st_mtime_ns:x}-{file.st_size:x}"'


def validate_key(bucket: str, path: str) -> None:
    """Refuse a bucket name or object key Storage would refuse, one that could leave the root, or one
    too long to be a file path (see MAX_KEY_BYTES)."""
    if not _VALID_BUCKET.fullmatch(bucket):
        raise errors.invalid_key(bucket)
    segments = path.split("/")
    if (
        len(path) > MAX_KEY_BYTES  # checked first, so a huge key is not scanned by the pattern
        or not _VALID_KEY.fullmatch(path)
        or any(part in ("", ".", "..") or len(part) > MAX_KEY_SEGMENT_BYTES for part in segments)
    ):
        raise errors.invalid_key(f"{bucket}/{path}")


async def lock_object(conn: Connection, bucket: str, path: str) -> None:
    """Hold the object's lock until `conn`'s transaction ends. A write takes it before it moves a file
    into place and commits the row; the orphan sweep (standins.storage.orphan_files) takes it before
    removing a file it found without a row, so it never removes one whose row is about to commit."""
    await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket}/{path}",))


def mime_allowed(mimetype: str, allowed: list[str] | None) -> bool:
    """Storage's check: no list admits anything; `type/*` admits any subtype; otherwise exact match."""
    if not allowed:
        return True
    kind = mimetype.split("/", 1)[0]
    return mimetype in allowed or f"{kind}/*" in allowed


class StorageService:
    """Storage's object operations over one database and one directory."""

    def __init__(self, db: Database, signing_secret: str, root_dir: Path) -> None:
        self._db = db
        self._secret = signing_secret
        self._root = root_dir

    # -- signing ---------------------------------------------------------------------------------

    async def sign_upload(self, claims: Claims, bucket: str, path: str, *, upsert: bool) -> str:
        """An upload token for `bucket/path`, after checking that the caller could insert it now.

        The check is Storage's `canUpload`: the row is written as the caller and rolled back, so the
        same RLS policies that would govern an upload decide (upsert also needs SELECT and UPDATE).
        """
        validate_key(bucket, path)
        owner = _owner(claims)
        await self._bucket(bucket)
        async with self._as_caller(claims) as conn, conn.transaction(force_rollback=True):
            await _write_row(
                conn, bucket=bucket, path=path, owner=owner, metadata={}, user_metadata=None, upsert=upsert
            )
        return sign_upload_token(
            self._secret, bucket, path, owner=owner, upsert=upsert, expires_in=_UPLOAD_URL_EXPIRES_IN
        )

    async def sign_download(self, claims: Claims, bucket: str, path: str, expires_in: int) -> str:
        """A download token for an object the caller can see; an invisible object is simply not found."""
        validate_key(bucket, path)
        async with self._as_caller(claims) as conn:
            await self._find(conn, bucket, path)
        return sign_download_token(self._secret, bucket, path, expires_in=expires_in)

    # -- uploads ---------------------------------------------------------------------------------

    async def upload_signed(
        self, bucket: str, path: str, token: str, meta: UploadMeta, body: AsyncIterable[bytes]
    ) -> str:
        """Store the body under a signed upload token; returns the object's id."""
        validate_key(bucket, path)
        grant = verify_upload_token(self._secret, token, bucket, path)
        received = await self._receive(bucket, meta, body)
        # Storage writes signed uploads as superuser, with the owner and upsert the token carries.
        return await self._commit(
            self._db.service_transaction(),
            bucket=bucket,
            path=path,
            owner=grant.owner,
            received=received,
            upsert=grant.upsert,
        )

    async def upload(
        self, claims: Claims, bucket: str, path: str, meta: UploadMeta, body: AsyncIterable[bytes], *, upsert: bool
    ) -> str:
        """Store the body as the caller (RLS decides at write time); returns the object's id."""
        validate_key(bucket, path)
        received = await self._receive(bucket, meta, body)
        return await self._commit(
            self._as_caller(claims), bucket=bucket, path=path, owner=_owner(claims), received=received, upsert=upsert
        )

    # -- reads -----------------------------------------------------------------------------------

    async def find_signed(self, bucket: str, path: str, token: str) -> tuple[StoredObject, int]:
        """The object a download token names, and the token's expiry (for the `Expires` header). An object in the
        folder of a user being erased is refused (AccessDenied), as voicegate's fence asks: stricter than Supabase
        Storage, which serves it until the erasure has deleted it (docs/limits.md)."""
        validate_key(bucket, path)
        grant = verify_download_token(self._secret, token, bucket, path)
        async with self._db.service_transaction() as conn:
            row = await fetch_optional(conn, _Q["signed_object"], {"bucket": bucket, "name": path})
        if row is None:
            raise errors.no_such_key()
        if row.pop("fenced"):
            raise errors.access_denied(ERASED)
        return StoredObject(row, self._file(bucket, path)), grant.expires_at

    async def find(self, claims: Claims, bucket: str, path: str) -> StoredObject:
        """The object as the caller sees it under RLS."""
        validate_key(bucket, path)
        async with self._as_caller(claims) as conn:
            return await self._find(conn, bucket, path)

    async def find_info(self, claims: Claims, bucket: str, path: str) -> StoredObject:
        """The object for its info or HEAD (Storage's getObjectInfo.ts): NoSuchBucket when there is no such
        bucket; in a public bucket read as the service, whoever asks; else as the caller sees it under RLS."""
        validate_key(bucket, path)
        # One statement: the bucket, and the object as the service sees it, which is what a service caller or a
        # public bucket gets; a user of a private bucket reads it again under their RLS.
        async with self._db.service_statement() as conn:
            found = await fetch_optional(conn, _Q["bucket_and_object"], {"bucket": bucket, "name": path})
        if found is None:
            raise errors.no_such_bucket()
        if not (found["public"] or claims.get("role") == "service_role"):
            return await self.find(claims, bucket, path)
        if found["id"] is None:
            raise errors.no_such_key()
        return StoredObject({column: found[column] for column in _OBJECT_COLUMN_NAMES}, self._file(bucket, path))

    async def sign_downloads(
        self, claims: Claims, bucket: str, paths: list[str], expires_in: int
    ) -> list[dict[str, str | None]]:
        """Storage's `signObjectUrls`: a download URL for each path the caller can see, in the order asked,
        and for each other one Storage's error instead (an unseen object and a missing one are alike)."""
        async with self._as_caller(claims) as conn:
            rows = await fetch_all(conn, _Q["visible_names"], {"bucket": bucket, "names": paths})
        visible = {row["name"] for row in rows}
        signed: list[dict[str, str | None]] = []
        for path in paths:
            if path in visible:
                token = sign_download_token(self._secret, bucket, path, expires_in=expires_in)
                url = f"/object/sign/{bucket}/{path}?token={token}"
                signed.append({"error": None, "path": path, "signedURL": url})
            else:
                signed.append({"error": NOT_SIGNED, "path": path, "signedURL": None})
        return signed

    # -- lists -----------------------------------------------------------------------------------

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
            prefix, search = _escape_like(prefix), _escape_like(search)
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
        async with self._as_caller(claims) as conn:
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
        start_after = cursor.start_after if cursor else ""
        after = cursor.after if cursor else None
        async with self._as_caller(claims) as conn:
            if options.with_delimiter:
                params: dict[str, Any] = {
                    "prefix": options.prefix,
                    "bucket": bucket,
                    "limit": limit + 1,
                    "levels": len(options.prefix.split("/")) if options.prefix else 1,
                    "start_after": start_after,
                    "order": order or "asc",
                    "column": column or "name",
                    "after": after or None,
                }
                rows = _delimited(await fetch_all(conn, _Q["search_v2"], params), options.prefix)
            else:
                params = {
                    "bucket": bucket,
                    "pattern": _escape_like(options.prefix) + "%",
                    "start_after": start_after or None,
                    "column": column if column in _TIMESTAMP_COLUMNS else None,
                    "order": order if order in ("asc", "desc") else "asc",
                    "after": after or None,
                    "limit": limit + 1,
                }
                rows = await fetch_all(conn, _Q["list_v2"], params)
        return _list_v2_page(rows, limit, order, column)

    async def list_buckets(self, claims: Claims, options: BucketListOptions) -> list[dict[str, Any]]:
        """The buckets the caller's RLS shows them (Storage's `listBuckets`): none for a user or anon on
        a project, like voicegate's, with no policy on `storage.buckets`; all of them for the service."""
        params = {
            "search": _escape_like(options.search) if options.search else None,
            "column": options.column,
            "order": options.order if options.column else None,
            "limit": options.limit,
            "offset": options.offset,
        }
        async with self._as_caller(claims) as conn:
            return await fetch_all(conn, _Q["list_buckets"], params)

    async def get_bucket(self, claims: Claims, bucket: str) -> dict[str, Any]:
        """One bucket as the caller's RLS shows it, else NoSuchBucket (Storage's `findBucket`)."""
        async with self._as_caller(claims) as conn:
            row = await fetch_optional(conn, _Q["find_bucket"], {"bucket": bucket})
        if row is None:
            raise errors.no_such_bucket()
        return row

    async def find_public(self, bucket: str, path: str) -> StoredObject:
        """An object of a public bucket, read by anyone (Storage's `getPublicObject`, as superuser). A bucket
        that is not public is not found, which is what every voicegate bucket answers."""
        validate_key(bucket, path)
        async with self._db.service_transaction() as conn:
            if await fetch_optional(conn, _Q["public_bucket"], {"bucket": bucket}) is None:
                raise errors.no_such_bucket()
            return await self._find(conn, bucket, path)

    # -- buckets ---------------------------------------------------------------------------------

    async def create_bucket(self, claims: Claims, bucket: str, name: str, settings: BucketSettings) -> None:
        """Storage's `createBucket` as the caller: a user is refused by RLS (AccessDenied), as on a project
        with no policy on `storage.buckets`; an existing id or name is BucketAlreadyExists."""
        if not _VALID_BUCKET.fullmatch(bucket):
            # The id names the bucket's directory here.
            raise errors.invalid_bucket_name()
        owner = _owner(claims)
        params = {
            "id": bucket,
            "name": name,
            "owner": owner,
            "owner_id": owner,
            "public": settings.public,
            "file_size_limit": settings.file_size_limit,
            "allowed_mime_types": settings.allowed_mime_types,
        }
        try:
            async with self._as_caller(claims) as conn:
                await fetch_optional(conn, _Q["create_bucket"], params)
        except pg_errors.UniqueViolation as exc:
            raise errors.bucket_already_exists() from exc

    async def update_bucket(self, claims: Claims, bucket: str, settings: BucketSettings) -> None:
        """Storage's `updateBucket` as the caller: a bucket their RLS does not show (every bucket, for a user)
        is NoSuchBucket."""
        params = {
            "bucket": bucket,
            "set_public": "public" in settings.given,
            "public": settings.public,
            "set_limit": "file_size_limit" in settings.given,
            "file_size_limit": settings.file_size_limit,
            "set_types": "allowed_mime_types" in settings.given,
            "allowed_mime_types": settings.allowed_mime_types,
        }
        async with self._as_caller(claims) as conn:
            if await fetch_optional(conn, _Q["update_bucket"], params) is None:
                raise errors.no_such_bucket()

    async def delete_bucket(self, claims: Claims, bucket: str) -> None:
        """Storage's `deleteBucket`: NoSuchBucket, else ResourceNotEmpty while it holds objects (both looked
        up as the service, as Storage does), then the delete as the caller: NoSuchBucket when their RLS does
        not let them (every bucket, for a user). Its directory goes once the row is gone."""
        async with self._db.service_transaction() as conn:
            if await fetch_optional(conn, _Q["lock_bucket"], {"bucket": bucket}) is None:
                raise errors.no_such_bucket()
            if await fetch_optional(conn, _Q["bucket_has_objects"], {"bucket": bucket}) is not None:
                raise errors.bucket_not_empty()
        try:
            async with self._as_caller(claims) as conn:
                await conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
                deleted = await fetch_optional(conn, _Q["delete_bucket"], {"bucket": bucket})
        except pg_errors.ForeignKeyViolation as exc:
            # An object arrived since the count.
            raise errors.bucket_not_empty() from exc
        if deleted is None:
            raise errors.no_such_bucket()
        if _VALID_BUCKET.fullmatch(bucket):
            # Only empty folders (or files whose rows are gone) can be left: every object row was gone.
            await anyio.to_thread.run_sync(partial(shutil.rmtree, self._root / bucket, ignore_errors=True))

    async def empty_bucket(self, claims: Claims, bucket: str) -> None:
        """Storage's `emptyBucket`, for the service key only (anyone else: AccessDenied, a real 403): every
        object of the bucket deleted, its file after the rows' deletion committed. Storage queues this; here
        it is done when the answer comes."""
        if claims.get("role") != "service_role":
            raise errors.role_denied()
        await self._bucket(bucket)
        async with self._db.service_transaction() as conn:
            await conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
            rows = await fetch_all(conn, _Q["empty_bucket"], {"bucket": bucket})
        for row in rows:
            await _unlink(self._file(bucket, row["name"]))

    # -- moves and copies ------------------------------------------------------------------------

    async def move(self, claims: Claims, bucket: str, path: str, dest_bucket: str, dest: str) -> str:
        """Move an object as Storage's `moveObject` does; returns its id.

        The caller must see the object and be let to rename it (their UPDATE policy, old row and new),
        which is tried as them and rolled back: a row they may not update is simply not found
        (NoSuchKey), one whose new place their policy refuses is AccessDenied. Then it moves as the
        service, the file linked into its new place before the row commits and unlinked from the old
        one after.
        """
        validate_key(bucket, path)
        validate_key(dest_bucket, dest)
        await self._bucket(bucket)
        await self._bucket(dest_bucket)
        owner = _owner(claims)
        async with self._as_caller(claims) as conn, conn.transaction(force_rollback=True):
            await self._find(conn, bucket, path)
            moved = await _move_row(conn, bucket, path, dest_bucket, dest, owner=owner)
        if (bucket, path) == (dest_bucket, dest):
            return str(moved["id"])
        source, target = self._file(bucket, path), self._file(dest_bucket, dest)
        temp = await self._temp_path()
        try:
            async with self._db.service_transaction() as conn:
                for locked in sorted([(bucket, path), (dest_bucket, dest)]):
                    await lock_object(conn, *locked)
                moved = await _move_row(conn, bucket, path, dest_bucket, dest, owner=owner)
                try:
                    await anyio.Path(temp).hardlink_to(source)
                except FileNotFoundError as exc:
                    raise errors.no_such_key() from exc
                await anyio.to_thread.run_sync(make_private_dirs, target.parent)
                await anyio.Path(temp).replace(target)
        finally:
            await _unlink(temp)
        await _unlink(source)
        return str(moved["id"])

    async def copy(self, claims: Claims, bucket: str, path: str, dest_bucket: str, dest: str, *, upsert: bool) -> str:
        """Copy an object as Storage's `copyObject` does; returns the copy's id.

        The caller must see the source, and could upload the copy themselves (Storage's `canUpload`:
        their INSERT policy, with upsert also SELECT and UPDATE), which is tried as them and rolled back.
        Then the copy is written as the service, owned by the caller, with the source's metadata.
        """
        validate_key(bucket, path)
        validate_key(dest_bucket, dest)
        await self._bucket(bucket)
        await self._bucket(dest_bucket)
        owner = _owner(claims)
        async with self._as_caller(claims) as conn:
            original = await self._find(conn, bucket, path)
            async with conn.transaction(force_rollback=True):
                await _write_row(
                    conn,
                    bucket=dest_bucket,
                    path=dest,
                    owner=owner,
                    metadata=original.metadata,
                    user_metadata=original.row["user_metadata"],
                    upsert=upsert,
                )
        received = await self._copied(original)
        return await self._commit(
            self._db.service_transaction(), bucket=dest_bucket, path=dest, owner=owner, received=received, upsert=True
        )

    # -- deletes ---------------------------------------------------------------------------------

    async def delete_one(self, claims: Claims, bucket: str, path: str) -> None:
        """Delete one object: NoSuchKey when the caller cannot see one there, AccessDenied when they can see
        it but their policies do not let them delete it.

        Storage's `deleteObject` looks the object up as superuser, so its AccessDenied for someone else's
        object and NoSuchKey for a missing one tell a stranger which names exist: here both are looked up
        under the caller's RLS, so what they may not see is simply not found, as on every other route."""
        validate_key(bucket, path)
        async with self._as_caller(claims) as conn:
            await self._find(conn, bucket, path)
        if not await self.delete(claims, bucket, [path]):
            raise errors.access_denied("Access denied")

    async def delete(self, claims: Claims, bucket: str, paths: list[str]) -> list[dict[str, Any]]:
        """Delete what the caller may delete among `paths`; returns the deleted rows."""
        for path in paths:
            validate_key(bucket, path)
        await self._bucket(bucket)
        async with self._as_caller(claims) as conn:
            # Storage sets this in every request's transaction (src/internal/database/postgres/scope.ts);
            # its protect_delete triggers refuse a delete without it.
            await conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
            cur = await conn.execute(
                f"delete from storage.objects where bucket_id = %s and name = any(%s) returning {_OBJECT_COLUMNS}",
                (bucket, paths),
            )
            rows = await cur.fetchall()
        for row in rows:
            await _unlink(self._file(bucket, row["name"]))
        return rows

    # -- internals -------------------------------------------------------------------------------

    def _file(self, bucket: str, path: str) -> Path:
        return self._root / bucket / path

    @asynccontextmanager
    async def _as_caller(self, claims: Claims) -> AsyncIterator[Connection]:
        """A transaction as the caller's role, turning RLS refusals into Storage's AccessDenied."""
        role = claims.get("role")
        try:
            if role == "service_role":
                async with self._db.service_transaction() as conn:
                    yield conn
            elif role == "authenticated" and isinstance(claims.get("sub"), str):
                async with self._db.user_transaction(claims) as conn:
                    yield conn
            elif role == "anon":
                # Down from the service to `anon` before any statement runs: RLS then treats the request as
                # Storage treats a request that carries only the anon key (voicegate's buckets give it nothing).
                async with self._db.service_transaction() as conn:
                    await conn.execute(_AS_ANON, {"claims": json.dumps({**claims, "role": "anon"})})
                    yield conn
            else:
                raise errors.access_denied("Access denied")
        except pg_errors.InsufficientPrivilege as exc:
            raise errors.denied_by_database(exc) from exc

    async def _bucket(self, bucket: str) -> Bucket:
        # Read as the service: bucket limits are not secret, and users have no policy on storage.buckets.
        async with self._db.service_transaction() as conn:
            cur = await conn.execute(
                "select file_size_limit, allowed_mime_types from storage.buckets where id = %s", (bucket,)
            )
            row = await cur.fetchone()
        if row is None:
            raise errors.no_such_bucket()
        return Bucket(row["file_size_limit"], row["allowed_mime_types"])

    async def _find(self, conn: Connection, bucket: str, path: str) -> StoredObject:
        cur = await conn.execute(
            f"select {_OBJECT_COLUMNS} from storage.objects where bucket_id = %s and name = %s", (bucket, path)
        )
        row = await cur.fetchone()
        if row is None:
            raise errors.no_such_key()
        return StoredObject(row, self._file(bucket, path))

    async def _receive(self, bucket_id: str, meta: UploadMeta, body: AsyncIterable[bytes]) -> _Received:
        """Stream the body to a temporary file, enforcing the bucket's MIME list and size limit."""
        bucket = await self._bucket(bucket_id)
        limit = min(GLOBAL_FILE_SIZE_LIMIT, bucket.file_size_limit or GLOBAL_FILE_SIZE_LIMIT)
        multipart_body = _is_multipart(meta)
        # A raw body's announced length is its size; a multipart one also counts the framing.
        if meta.content_length is not None and meta.content_length > limit and not multipart_body:
            raise errors.entity_too_large()
        received = _Received(temp_path=await self._temp_path())
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
            await _unlink(received.temp_path)
            raise
        return received

    async def _temp_path(self) -> Path:
        """A fresh name under the uploads directory, on the objects' filesystem (renames are atomic)."""
        temp_dir = self._root / UPLOADS_DIR
        await anyio.to_thread.run_sync(make_private_dirs, temp_dir)
        return temp_dir / uuid.uuid4().hex

    async def _copied(self, original: StoredObject) -> _Received:
        """The object's bytes copied to a temporary file, with the metadata a copy keeps."""
        metadata = original.metadata
        received = _Received(
            temp_path=await self._temp_path(),
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
            await _unlink(received.temp_path)
            raise errors.no_such_key() from exc
        except BaseException:
            await _unlink(received.temp_path)
            raise
        return received

    async def _commit(
        self,
        transaction: AbstractAsyncContextManager[Connection],
        *,
        bucket: str,
        path: str,
        owner: str | None,
        received: _Received,
        upsert: bool,
    ) -> str:
        """Write the row and move the file into place in one transaction; clean up on failure."""
        now = datetime.now(UTC)
        metadata = {
            # A rename keeps the file's modification time: the ETag reads the same once the file is in place.
            "eTag": file_etag(received.temp_path.stat()),
            "size": received.size,
            "mimetype": received.mimetype,
            "cacheControl": received.cache_control,
            "lastModified": now.isoformat().replace("+00:00", "Z"),
            "contentLength": received.size,
            "httpStatusCode": 200,
        }
        target = self._file(bucket, path)
        try:
            async with transaction as conn:
                await lock_object(conn, bucket, path)
                object_id = await _write_row(
                    conn,
                    bucket=bucket,
                    path=path,
                    owner=owner,
                    metadata=metadata,
                    user_metadata=received.user_metadata,
                    upsert=upsert,
                )
                await anyio.to_thread.run_sync(make_private_dirs, target.parent)
                # Same filesystem, so the rename is atomic: a reader sees the old bytes or the new.
                await anyio.Path(received.temp_path).replace(target)
        finally:
            await _unlink(received.temp_path)
        return object_id


async def _write_row(
    conn: Connection,
    *,
    bucket: str,
    path: str,
    owner: str | None,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
    upsert: bool,
) -> str:
    values = (
        bucket,
        path,
        owner,
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
        if upsert
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


async def _move_row(
    conn: Connection, bucket: str, path: str, dest_bucket: str, dest: str, *, owner: str | None
) -> dict[str, Any]:
    """Storage's `updateObject` of a move: the row renamed, owned by the mover, with a new version."""
    try:
        cur = await conn.execute(
            "update storage.objects set bucket_id = %s, name = %s, owner_id = %s, version = %s, updated_at = now()"
            f" where bucket_id = %s and name = %s returning {_OBJECT_COLUMNS}",
            (dest_bucket, dest, owner, uuid.uuid4().hex, bucket, path),
        )
    except pg_errors.UniqueViolation as exc:
        raise errors.resource_already_exists() from exc
    except pg_errors.InsufficientPrivilege as exc:
        raise errors.denied_by_database(exc) from exc
    row = await cur.fetchone()
    if row is None:
        raise errors.no_such_key()
    return row


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


def _escape_like(text: str) -> str:
    """Storage's `escapeLike` (src/storage/database/pg.ts): a LIKE pattern's backslash, `%` and `_` taken literally."""
    return re.sub(r"([%_])", r"\\\1", text.replace("\\", "\\\\"))


def _owner(claims: Claims) -> str | None:
    # The service key has no `sub`: its objects have no owner, as on Supabase.
    sub = claims.get("sub")
    return sub if claims.get("role") == "authenticated" and isinstance(sub, str) else None


def _refuse_nul(received: _Received) -> None:
    """What is kept of the request besides its bytes goes into `jsonb` columns, which cannot hold a NUL."""
    if holds_nul([received.mimetype, received.cache_control, received.user_metadata]):
        raise errors.invalid_request("the content type, cache control and metadata must not contain a NUL character")


def _is_multipart(meta: UploadMeta) -> bool:
    return (meta.content_type or "").lower().startswith("multipart/form-data")


def _receive_raw_meta(received: _Received, meta: UploadMeta, allowed: list[str] | None) -> None:
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
    received: _Received,
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

    def __init__(self, out: AsyncFile[bytes], received: _Received, limit: int) -> None:
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


async def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        await anyio.Path(path).unlink()
