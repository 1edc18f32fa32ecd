"""The Storage stand-in's buckets: listing, reading, making, changing, emptying and deleting them, each as the
caller's RLS lets them (a user, on a project with no policy on `storage.buckets`, none of it; the service key,
all of it)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from psycopg import errors as pg_errors

from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from standins.storage import errors
from standins.storage.access import Claims, StorageAccess, owner, unlink
from standins.storage.rules import VALID_BUCKET, escape_like

_Q = load_queries(Path(__file__).with_suffix(".sql"))
# Storage sets this in every request's transaction; its protect_delete triggers refuse a delete without it.
_ALLOW_DELETE = "select set_config('storage.allow_delete_query', 'true', true)"


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


class BucketService:
    """Storage's bucket operations over one database and one directory."""

    def __init__(self, access: StorageAccess) -> None:
        self._access = access

    async def list_buckets(self, claims: Claims, options: BucketListOptions) -> list[dict[str, Any]]:
        """The buckets the caller's RLS shows them (Storage's `listBuckets`): none for a user or anon on
        a project, like voicegate's, with no policy on `storage.buckets`; all of them for the service."""
        params = {
            "search": escape_like(options.search) if options.search else None,
            "column": options.column,
            "order": options.order if options.column else None,
            "limit": options.limit,
            "offset": options.offset,
        }
        async with self._access.as_caller(claims) as conn:
            return await fetch_all(conn, _Q["list_buckets"], params)

    async def get_bucket(self, claims: Claims, bucket: str) -> dict[str, Any]:
        """One bucket as the caller's RLS shows it, else NoSuchBucket (Storage's `findBucket`)."""
        async with self._access.as_caller(claims) as conn:
            row = await fetch_optional(conn, _Q["find_bucket"], {"bucket": bucket})
        if row is None:
            raise errors.no_such_bucket()
        return row

    async def create_bucket(self, claims: Claims, bucket: str, name: str, settings: BucketSettings) -> None:
        """Storage's `createBucket` as the caller: a user is refused by RLS (AccessDenied), as on a project
        with no policy on `storage.buckets`; an existing id or name is BucketAlreadyExists."""
        if not VALID_BUCKET.fullmatch(bucket):
            # The id names the bucket's directory here.
            raise errors.invalid_bucket_name()
        owner_id = owner(claims)
        params = {
            "id": bucket,
            "name": name,
            "owner": owner_id,
            "owner_id": owner_id,
            "public": settings.public,
            "file_size_limit": settings.file_size_limit,
            "allowed_mime_types": settings.allowed_mime_types,
        }
        try:
            async with self._access.as_caller(claims) as conn:
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
        async with self._access.as_caller(claims) as conn:
            if await fetch_optional(conn, _Q["update_bucket"], params) is None:
                raise errors.no_such_bucket()

    async def delete_bucket(self, claims: Claims, bucket: str) -> None:
        """Storage's `deleteBucket`: NoSuchBucket, else ResourceNotEmpty while it holds objects (both looked
        up as the service, as Storage does), then the delete as the caller: NoSuchBucket when their RLS does
        not let them (every bucket, for a user). Its directory goes once the row is gone."""
        async with self._access.db.service_transaction() as conn:
            if await fetch_optional(conn, _Q["lock_bucket"], {"bucket": bucket}) is None:
                raise errors.no_such_bucket()
            if await fetch_optional(conn, _Q["bucket_has_objects"], {"bucket": bucket}) is not None:
                raise errors.bucket_not_empty()
        try:
            async with self._access.as_caller(claims) as conn:
                await conn.execute(_ALLOW_DELETE)
                deleted = await fetch_optional(conn, _Q["delete_bucket"], {"bucket": bucket})
        except pg_errors.ForeignKeyViolation as exc:
            # An object arrived since the count.
            raise errors.bucket_not_empty() from exc
        if deleted is None:
            raise errors.no_such_bucket()
        if VALID_BUCKET.fullmatch(bucket):
            # Only empty folders (or files whose rows are gone) can be left: every object row was gone.
            await anyio.to_thread.run_sync(partial(shutil.rmtree, self._access.root / bucket, ignore_errors=True))

    async def empty_bucket(self, claims: Claims, bucket: str) -> None:
        """Storage's `emptyBucket`, for the service key only (anyone else: AccessDenied, a real 403): every
        object of the bucket deleted, its file after the rows' deletion committed. Storage queues this; here
        it is done when the answer comes."""
        if claims.get("role") != "service_role":
            raise errors.role_denied()
        await self._access.bucket(bucket)
        async with self._access.db.service_transaction() as conn:
            await conn.execute(_ALLOW_DELETE)
            rows = await fetch_all(conn, _Q["empty_bucket"], {"bucket": bucket})
        for row in rows:
            await unlink(self._access.file(bucket, row["name"]))
