"""The Storage stand-in's object operations: signing URLs, uploads, reads, moves, copies and deletes.

It behaves as Supabase Storage does where voicegate can observe it: the caller's own role and claims decide,
through the same RLS policies, what they may sign, read and delete; signed URLs carry Storage's JWTs. The
database row is the authority: files are removed only after the rows' deletion committed (an orphan file is
harmless, a row without its file is not).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import anyio
from psycopg import errors as pg_errors

from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from standins.private_files import make_private_dirs
from standins.storage import errors
from standins.storage.access import Claims, StorageAccess, StoredObject, lock_object, owner, unlink
from standins.storage.rules import validate_key
from standins.storage.tokens import (
    sign_download_token,
    sign_upload_token,
    verify_download_token,
    verify_upload_token,
)
from standins.storage.uploads import Placement, UploadMeta, commit, copied, receive, write_row

_Q = load_queries(Path(__file__).with_suffix(".sql"))

# How long a signed upload URL lasts: the Supabase CLI's 7200 s.
_UPLOAD_URL_EXPIRES_IN = 7200
#: Storage's `SIGNED_URL_SCOPE_DOWNLOAD` answer for a path it does not sign (src/storage/object.ts `signObjectUrls`).
NOT_SIGNED = "Either the object does not exist or you do not have access to it"
#: Why a signed download of an erased user's object is refused.
ERASED = "The user whose folder this is has been erased."
_OBJECT_COLUMN_NAMES = (
    "id",
    "bucket_id",
    "name",
    "owner",
    "owner_id",
    "version",
    "created_at",
    "updated_at",
    "last_accessed_at",
    "metadata",
    "user_metadata",
)


class ObjectService:
    """Storage's object operations over one database and one directory; `signing_secret` signs URL tokens."""

    def __init__(self, access: StorageAccess, signing_secret: str) -> None:
        self._access = access
        self._secret = signing_secret

    # -- signing ---------------------------------------------------------------------------------

    async def sign_upload(self, claims: Claims, bucket: str, path: str, *, upsert: bool) -> str:
        """An upload token for `bucket/path`, after checking that the caller could insert it now.

        The check is Storage's `canUpload`: the row is written as the caller and rolled back, so the
        same RLS policies that would govern an upload decide (upsert also needs SELECT and UPDATE).
        """
        validate_key(bucket, path)
        place = Placement(bucket, path, owner(claims), upsert)
        await self._access.bucket(bucket)
        async with self._access.as_caller(claims) as conn, conn.transaction(force_rollback=True):
            await write_row(conn, place, {}, None)
        return sign_upload_token(
            self._secret, bucket, path, owner=place.owner, upsert=upsert, expires_in=_UPLOAD_URL_EXPIRES_IN
        )

    async def sign_download(self, claims: Claims, bucket: str, path: str, expires_in: int) -> str:
        """A download token for an object the caller can see; an invisible object is simply not found."""
        validate_key(bucket, path)
        async with self._access.as_caller(claims) as conn:
            await self._access.find(conn, bucket, path)
        return sign_download_token(self._secret, bucket, path, expires_in=expires_in)

    async def sign_downloads(
        self, claims: Claims, bucket: str, paths: list[str], expires_in: int
    ) -> list[dict[str, str | None]]:
        """Storage's `signObjectUrls`: a download URL for each path the caller can see, in the order asked,
        and for each other one Storage's error instead (an unseen object and a missing one are alike)."""
        async with self._access.as_caller(claims) as conn:
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

    # -- uploads ---------------------------------------------------------------------------------

    async def upload_signed(
        self, bucket: str, path: str, token: str, meta: UploadMeta, body: AsyncIterable[bytes]
    ) -> str:
        """Store the body under a signed upload token; returns the object's id."""
        validate_key(bucket, path)
        grant = verify_upload_token(self._secret, token, bucket, path)
        received = await receive(self._access, bucket, meta, body)
        # Storage writes signed uploads as superuser, with the owner and upsert the token carries.
        place = Placement(bucket, path, grant.owner, grant.upsert)
        return await commit(self._access, self._access.db.service_transaction(), place, received)

    async def upload(
        self, claims: Claims, bucket: str, path: str, meta: UploadMeta, body: AsyncIterable[bytes], *, upsert: bool
    ) -> str:
        """Store the body as the caller (RLS decides at write time); returns the object's id."""
        validate_key(bucket, path)
        received = await receive(self._access, bucket, meta, body)
        place = Placement(bucket, path, owner(claims), upsert)
        return await commit(self._access, self._access.as_caller(claims), place, received)

    # -- reads -----------------------------------------------------------------------------------

    async def find_signed(self, bucket: str, path: str, token: str) -> tuple[StoredObject, int]:
        """The object a download token names, and the token's expiry (for the `Expires` header). An object in the
        folder of a user being erased is refused (AccessDenied), as voicegate's fence asks: stricter than Supabase
        Storage, which serves it until the erasure has deleted it (docs/limits.md)."""
        validate_key(bucket, path)
        grant = verify_download_token(self._secret, token, bucket, path)
        async with self._access.db.service_transaction() as conn:
            row = await fetch_optional(conn, _Q["signed_object"], {"bucket": bucket, "name": path})
        if row is None:
            raise errors.no_such_key()
        if row.pop("fenced"):
            raise errors.access_denied(ERASED)
        return StoredObject(row, self._access.file(bucket, path)), grant.expires_at

    async def find(self, claims: Claims, bucket: str, path: str) -> StoredObject:
        """The object as the caller sees it under RLS."""
        validate_key(bucket, path)
        async with self._access.as_caller(claims) as conn:
            return await self._access.find(conn, bucket, path)

    async def find_info(self, claims: Claims, bucket: str, path: str) -> StoredObject:
        """The object for its info or HEAD (Storage's getObjectInfo.ts): NoSuchBucket when there is no such
        bucket; in a public bucket read as the service, whoever asks; else as the caller sees it under RLS."""
        validate_key(bucket, path)
        # One statement: the bucket, and the object as the service sees it, which is what a service caller or a
        # public bucket gets; a user of a private bucket reads it again under their RLS.
        async with self._access.db.service_statement() as conn:
            found = await fetch_optional(conn, _Q["bucket_and_object"], {"bucket": bucket, "name": path})
        if found is None:
            raise errors.no_such_bucket()
        if not (found["public"] or claims.get("role") == "service_role"):
            return await self.find(claims, bucket, path)
        if found["id"] is None:
            raise errors.no_such_key()
        row = {column: found[column] for column in _OBJECT_COLUMN_NAMES}
        return StoredObject(row, self._access.file(bucket, path))

    async def find_public(self, bucket: str, path: str) -> StoredObject:
        """An object of a public bucket, read by anyone (Storage's `getPublicObject`, as superuser). A bucket
        that is not public is not found, which is what every voicegate bucket answers."""
        validate_key(bucket, path)
        async with self._access.db.service_transaction() as conn:
            if await fetch_optional(conn, _Q["public_bucket"], {"bucket": bucket}) is None:
                raise errors.no_such_bucket()
            return await self._access.find(conn, bucket, path)

    # -- moves and copies ------------------------------------------------------------------------

    async def move(self, claims: Claims, bucket: str, path: str, dest_bucket: str, dest: str) -> str:
        """Move an object as Storage's `moveObject` does; returns its id.

        The caller must see the object and be let to rename it (their UPDATE policy, old row and new),
        which is tried as them and rolled back: a row they may not update is simply not found
        (NoSuchKey), one whose new place their policy refuses is AccessDenied. Then it moves as the
        service, the file linked into its new place before the row commits and unlinked from the old
        one after.
        """
        await self._both_buckets(bucket, path, dest_bucket, dest)
        moved = Placement(dest_bucket, dest, owner(claims), upsert=False)
        async with self._access.as_caller(claims) as conn, conn.transaction(force_rollback=True):
            await self._access.find(conn, bucket, path)
            object_id = await self._move_row(conn, bucket, path, moved)
        if (bucket, path) == (dest_bucket, dest):
            return object_id
        object_id = await self._move_as_service(bucket, path, moved)
        await unlink(self._access.file(bucket, path))
        return object_id

    async def _move_as_service(self, bucket: str, path: str, moved: Placement) -> str:
        """The row renamed and the file linked into its new place, both objects locked, in one transaction."""
        source, target = self._access.file(bucket, path), self._access.file(moved.bucket, moved.path)
        temp = await self._access.temp_path()
        try:
            async with self._access.db.service_transaction() as conn:
                for locked in sorted([(bucket, path), (moved.bucket, moved.path)]):
                    await lock_object(conn, *locked)
                object_id = await self._move_row(conn, bucket, path, moved)
                try:
                    await anyio.Path(temp).hardlink_to(source)
                except FileNotFoundError as exc:
                    raise errors.no_such_key() from exc
                await anyio.to_thread.run_sync(make_private_dirs, target.parent)
                await anyio.Path(temp).replace(target)
        finally:
            await unlink(temp)
        return object_id

    @staticmethod
    async def _move_row(conn: Connection, bucket: str, path: str, moved: Placement) -> str:
        """Storage's `updateObject` of a move: the row renamed, owned by the mover, with a new version."""
        params = {
            "bucket": bucket,
            "name": path,
            "dest_bucket": moved.bucket,
            "dest": moved.path,
            "owner": moved.owner,
            "version": uuid.uuid4().hex,
        }
        try:
            cur = await conn.execute(_Q["move_object"], params)
        except pg_errors.UniqueViolation as exc:
            raise errors.resource_already_exists() from exc
        except pg_errors.InsufficientPrivilege as exc:
            raise errors.denied_by_database(exc) from exc
        row = await cur.fetchone()
        if row is None:
            raise errors.no_such_key()
        return str(row["id"])

    async def copy(self, claims: Claims, bucket: str, path: str, dest_bucket: str, dest: str, *, upsert: bool) -> str:
        """Copy an object as Storage's `copyObject` does; returns the copy's id.

        The caller must see the source, and could upload the copy themselves (Storage's `canUpload`:
        their INSERT policy, with upsert also SELECT and UPDATE), which is tried as them and rolled back.
        Then the copy is written as the service, owned by the caller, with the source's metadata.
        """
        await self._both_buckets(bucket, path, dest_bucket, dest)
        place = Placement(dest_bucket, dest, owner(claims), upsert)
        async with self._access.as_caller(claims) as conn:
            original = await self._access.find(conn, bucket, path)
            async with conn.transaction(force_rollback=True):
                await write_row(conn, place, original.metadata, original.row["user_metadata"])
        received = await copied(self._access, original)
        written = Placement(dest_bucket, dest, place.owner, upsert=True)
        return await commit(self._access, self._access.db.service_transaction(), written, received)

    async def _both_buckets(self, bucket: str, path: str, dest_bucket: str, dest: str) -> None:
        """A move's or copy's keys checked, and both buckets found (NoSuchBucket otherwise)."""
        validate_key(bucket, path)
        validate_key(dest_bucket, dest)
        await self._access.bucket(bucket)
        await self._access.bucket(dest_bucket)

    # -- deletes ---------------------------------------------------------------------------------

    async def delete_one(self, claims: Claims, bucket: str, path: str) -> None:
        """Delete one object: NoSuchKey when the caller cannot see one there, AccessDenied when they can see
        it but their policies do not let them delete it.

        Storage's `deleteObject` looks the object up as superuser, so its AccessDenied for someone else's
        object and NoSuchKey for a missing one tell a stranger which names exist: here both are looked up
        under the caller's RLS, so what they may not see is simply not found, as on every other route."""
        validate_key(bucket, path)
        async with self._access.as_caller(claims) as conn:
            await self._access.find(conn, bucket, path)
        if not await self.delete(claims, bucket, [path]):
            raise errors.access_denied("Access denied")

    async def delete(self, claims: Claims, bucket: str, paths: list[str]) -> list[dict[str, Any]]:
        """Delete what the caller may delete among `paths`; returns the deleted rows."""
        for path in paths:
            validate_key(bucket, path)
        await self._access.bucket(bucket)
        async with self._access.as_caller(claims) as conn:
            # Storage sets this in every request's transaction (src/internal/database/postgres/scope.ts);
            # its protect_delete triggers refuse a delete without it.
            await conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
            rows = await fetch_all(conn, _Q["delete_objects"], {"bucket": bucket, "names": paths})
        for row in rows:
            await unlink(self._access.file(bucket, row["name"]))
        return rows
