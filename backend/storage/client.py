"""The one object-storage interface voicegate code uses, over the `supabase` package's Storage client.

Production points it at Supabase Storage (`SUPABASE_URL/storage/v1`), embedded mode at voicegate's own
`/storage/v1`; the code path is the same, so the stand-in is exercised by exactly the client that talks
to the real thing. Storage errors become voicegate's (`NotFound`, `Conflict`, ...), keyed on the
logical status in Storage's error body (its HTTP status is 400 for nearly everything).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Protocol, TypeVar, cast
from urllib.parse import quote

import httpx
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions
from storage3.utils import StorageException

from backend.errors import (
    ClientError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServerBusy,
    StorageUnavailable,
    UnsupportedMediaType,
    VoicegateError,
)
from backend.outages import STORAGE, cause
from backend.storage.digest import Digest
from backend.storage.paths import SAMPLES
from backend.storage.recent import RecentAnswers
from backend.tls import verifying_context

T = TypeVar("T")

#: Seconds to open a connection to Storage: one that does not open this soon is unreachable, however long
#: a transfer on an open one may take.
CONNECT_TIMEOUT = 5.0
#: What a probe asks about: a bucket voicegate always has (one lookup; it answers 200, so a healthy start leaves no
#: refusal in the access log, where asking for an object that never exists left a 400 each time).
PROBE_BUCKET = SAMPLES

_ERRORS: dict[str, type[VoicegateError]] = {
    "400": ClientError,
    "401": Forbidden,
    "403": Forbidden,
    "404": NotFound,
    "409": Conflict,
    "413": PayloadTooLarge,
    "415": UnsupportedMediaType,
    # Storage (or the stand-in, its connections busy) asks us to slow down: so do our callers.
    "429": ServerBusy,
}


@dataclass(frozen=True)
class SignedUpload:
    """Where and with what token a client uploads one object."""

    url: str
    token: str
    path: str


@dataclass(frozen=True)
class ObjectInfo:
    """What Storage records about an object."""

    id: str
    bucket: str
    name: str
    size: int | None
    content_type: str | None
    etag: str | None
    cache_control: str | None
    last_modified: datetime | None
    created_at: datetime | None
    metadata: dict[str, Any] | None


class ObjectRemover(Protocol):
    """The one Storage operation a purge or a sweep needs (`ObjectStorage` has it)."""

    async def remove(self, bucket: str, paths: list[str]) -> list[str]:
        """Delete the objects; returns the names that existed and were deleted."""
        ...


class ObjectStorage(ObjectRemover, Protocol):
    """Object storage as voicegate needs it: signed URLs for clients, bytes for workers."""

    async def ping(self) -> None:
        """Ask Storage something cheap (one of voicegate's buckets): StorageUnavailable when it does not answer."""
        ...

    async def create_signed_upload_url(self, bucket: str, path: str, *, upsert: bool = False) -> SignedUpload:
        """A URL (with its token) a client can PUT the object to without any other credential."""
        ...

    async def upload(
        self, bucket: str, path: str, data: bytes | IO[bytes], content_type: str, *, upsert: bool = False
    ) -> None:
        """Store `data` (bytes, or a binary file object that is streamed) at `bucket/path`."""
        ...

    async def create_signed_url(self, bucket: str, path: str, expires_in: int, *, version: str | None = None) -> str:
        """A URL that downloads the object for `expires_in` seconds; with the object's `version` (`stored_version`),
        one already signed for that version may be handed out again while most of its time is left."""
        ...

    async def stored_version(self, bucket: str, path: str) -> str | None:
        """What Storage's backend reports of the object's stored bytes (its ETag, size and modification time, from a
        HEAD: no byte of the object is read), which changes whenever they do; None when there is no such object."""
        ...

    async def download(self, bucket: str, path: str) -> bytes:
        """The object's bytes."""
        ...

    async def head(self, bucket: str, path: str, size: int) -> bytes:
        """The object's first `size` bytes (all of it when it is shorter), without reading the rest."""
        ...

    async def digest(self, bucket: str, path: str) -> Digest:
        """The SHA-256 and size of the object's bytes, read as a stream (never held whole)."""
        ...

    async def info(self, bucket: str, path: str) -> ObjectInfo | None:
        """The object's info, or None when there is no such object."""
        ...


class SupabaseObjectStorage:
    """`ObjectStorage` over storage3's `AsyncStorageClient`, authenticated with the service key."""

    def __init__(
        self,
        storage_url: str,
        service_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        public_url: str | None = None,
        version_ttl: float = 0.0,
    ) -> None:
        """`storage_url` is the Storage base, e.g. `https://<ref>.supabase.co/storage/v1`; `transport`
        lets embedded mode reach its own `/storage/v1` in-process, through the same HTTP client code.
        `public_url` is that Storage as clients reach it, when it differs from `storage_url` (embedded
        mode): signed URLs handed out are rebased onto it. `stored_version` answers from what Storage last said
        about an object for `version_ttl` seconds (0: it asks each time); this client's own writes forget it."""
        self._base = storage_url.rstrip("/")
        self._public_base = (public_url or storage_url).rstrip("/")
        headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
        # Our own httpx client, so we own its lifetime (aclose) and its timeout; trust_env off
        # because a proxy from the environment must not see the service key.
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            trust_env=False,
            verify=verifying_context(),
            follow_redirects=True,
            transport=transport,
        )
        # Signed download URLs by (bucket, path, lifetime, stored version): a client polling a state that links an
        # object is handed the same URL again while more than half its lifetime is left, not one signed per poll.
        self._signed = RecentAnswers[tuple[str, str, int, str], str]()
        self._versions = RecentAnswers[tuple[str, str], str | None]()
        self._version_ttl = version_ttl
        # storage3 warns (and fixes it) when the base has no trailing slash.
        self._client = AsyncStorageClient(url=storage_url.rstrip("/") + "/", headers=headers, http_client=self._http)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def __aenter__(self) -> SupabaseObjectStorage:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def create_signed_upload_url(self, bucket: str, path: str, *, upsert: bool = False) -> SignedUpload:
        """A URL (with its token) a client can PUT the object to without any other credential."""
        # storage3 sends the option's string as the `x-upsert` header, and no header without it.
        options = CreateSignedUploadUrlOptions(upsert="true") if upsert else None
        result = await _call(lambda: self._client.from_(bucket).create_signed_upload_url(path, options))
        return SignedUpload(url=result["signed_url"], token=result["token"], path=result["path"])

    async def upload(
        self, bucket: str, path: str, data: bytes | IO[bytes], content_type: str, *, upsert: bool = False
    ) -> None:
        """Store `data` (bytes, or a binary file object that is streamed) at `bucket/path`."""
        options = cast(Any, {"content-type": content_type, "upsert": "true" if upsert else "false"})
        # storage3 takes bytes, BufferedReader or FileIO (anything else it would `open()` as a path);
        # wrapping other file objects keeps them streamed rather than read into memory.
        body = data if isinstance(data, bytes | io.BufferedReader | io.FileIO) else io.BufferedReader(_RawReader(data))
        self._versions.forget((bucket, path))
        try:
            await _call(lambda: self._client.from_(bucket).upload(path, body, options))
        finally:
            self._versions.forget((bucket, path))

    async def create_signed_url(self, bucket: str, path: str, expires_in: int, *, version: str | None = None) -> str:
        """A URL that downloads the object for `expires_in` seconds; with the object's `version` (`stored_version`),
        one already signed for that version may be handed out again while most of its time is left."""
        if version is None:
            return await self._sign(bucket, path, expires_in)
        key = (bucket, path, expires_in, version)
        if self._signed.holds(key):
            return self._signed.get(key)
        url = await self._sign(bucket, path, expires_in)
        self._signed.put(key, url, expires_in / 2)
        return url

    async def _sign(self, bucket: str, path: str, expires_in: int) -> str:
        result = await _call(lambda: self._client.from_(bucket).create_signed_url(path, expires_in))
        url = result["signedURL"]
        if not url:
            raise NotFound("Object not found")
        if url.startswith(self._base):
            url = self._public_base + url[len(self._base) :]
        return url

    async def stored_version(self, bucket: str, path: str) -> str | None:
        """What Storage's backend reports of the object's stored bytes (its ETag, size and modification time, from a
        HEAD: no byte of the object is read), which changes whenever they do; None when there is no such object."""
        key = (bucket, path)
        if self._versions.holds(key):
            return self._versions.get(key)
        version = await _call(lambda: self._stored_version(bucket, path))
        self._versions.put(key, version, self._version_ttl)
        return version

    def _object_url(self, bucket: str, path: str) -> str:
        """The object's authenticated route (the service key's), which storage3 only reads whole."""
        return f"{self._base}/object/authenticated/{quote(bucket, safe='')}/{quote(path, safe='/')}"

    async def _stored_version(self, bucket: str, path: str) -> str | None:
        response = await self._http.head(self._object_url(bucket, path))
        # A HEAD answer has no body to say why; Storage answers a missing object 400 (its logical 404) or 404.
        if response.status_code in (400, 404):
            return None
        if response.is_error:
            raise StorageUnavailable(f"storage answered {response.status_code} to a HEAD")
        headers = response.headers
        return "|".join(headers.get(name, "") for name in ("etag", "content-length", "last-modified"))

    async def download(self, bucket: str, path: str) -> bytes:
        """The object's bytes."""
        return await _call(lambda: self._client.from_(bucket).download(path))

    async def head(self, bucket: str, path: str, size: int) -> bytes:
        """The object's first `size` bytes (all of it when it is shorter), without reading the rest: asked as a
        range, and the answer left unread past them by a server that sends the whole object anyway."""
        return await _call(lambda: self._head(bucket, path, size))

    async def _head(self, bucket: str, path: str, size: int) -> bytes:
        read = bytearray()
        ranged = {"Range": f"bytes=0-{size - 1}"}
        async with self._http.stream("GET", self._object_url(bucket, path), headers=ranged) as response:
            if response.is_error:
                await response.aread()
                raise _api_error(response)
            async for chunk in response.aiter_bytes():
                read += chunk
                if len(read) >= size:
                    break
        return bytes(read[:size])

    async def digest(self, bucket: str, path: str) -> Digest:
        """The SHA-256 and size of the object's bytes, read as a stream (never held whole)."""
        return await _call(lambda: self._digest(bucket, path))

    async def _digest(self, bucket: str, path: str) -> Digest:
        sha256, size = hashlib.sha256(), 0
        async with self._http.stream("GET", self._object_url(bucket, path)) as response:
            if response.is_error:
                await response.aread()
                raise _api_error(response)
            async for chunk in response.aiter_bytes():
                sha256.update(chunk)
                size += len(chunk)
        return Digest(sha256.hexdigest(), size)

    async def ping(self) -> None:
        """Ask for one of voicegate's buckets: StorageUnavailable when Storage does not answer (reported, as every
        call is, to Storage's outage tracker)."""
        await _call(lambda: self._client.get_bucket(PROBE_BUCKET))

    async def unreachable(self, within: float) -> str | None:
        """Why Storage does not answer a cheap request within `within` seconds, in one line; None when it
        answers (any answer: it is reachable). Asked once as a process starts, before there is an outage
        to speak of: unlike every other call it is not reported to Storage's outage tracker (`answers` is)."""
        try:
            async with asyncio.timeout(within):
                await _translated(lambda: self._client.get_bucket(PROBE_BUCKET))
        except StorageUnavailable as exc:
            return cause(exc)
        except TimeoutError:
            return f"no answer within {within:g} s"
        except VoicegateError:
            return None
        return None

    async def info(self, bucket: str, path: str) -> ObjectInfo | None:
        """The object's info, or None when there is no such object."""
        try:
            raw = await _call(lambda: self._client.from_(bucket).info(path))
        except NotFound:
            return None
        return ObjectInfo(
            id=str(raw["id"]),
            bucket=raw.get("bucket_id") or bucket,
            name=raw["name"],
            size=raw.get("size"),
            content_type=raw.get("content_type"),
            etag=raw.get("etag"),
            cache_control=raw.get("cache_control"),
            last_modified=_timestamp(raw.get("last_modified")),
            created_at=_timestamp(raw.get("created_at")),
            metadata=raw.get("metadata"),
        )

    async def remove(self, bucket: str, paths: list[str]) -> list[str]:
        """Delete the objects; returns the names that existed and were deleted."""
        if not paths:
            return []
        for path in paths:
            self._versions.forget((bucket, path))
        rows = await _call(lambda: self._client.from_(bucket).remove(paths))
        return [row["name"] for row in rows]


class _RawReader(io.RawIOBase):
    """A raw binary stream over any `read(n)` file object, so io.BufferedReader can wrap it."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source

    def readable(self) -> bool:
        """Always: this only reads."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the source; 0 at its end."""
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


async def _call(operation: Callable[[], Awaitable[T]]) -> T:
    """Run a storage3 call, turning its errors into voicegate's and reporting Storage's availability."""
    try:
        result = await _translated(operation)
    except StorageUnavailable as exc:
        STORAGE.failed(exc)
        raise
    except VoicegateError:
        STORAGE.recovered()  # an answer, if not the one hoped for
        raise
    STORAGE.recovered()
    return result


async def _translated(operation: Callable[[], Awaitable[T]]) -> T:
    try:
        return await operation()
    except StorageApiError as exc:
        error = _ERRORS.get(str(exc.status))
        if error is not None:
            raise error(exc.message) from exc
        raise StorageUnavailable(f"storage answered {exc.status}: {exc.message}") from exc
    except (httpx.TransportError, StorageException) as exc:
        raise StorageUnavailable("storage is unreachable") from exc


async def answers(storage: ObjectStorage, within: float) -> bool:
    """Whether Storage answers a cheap request within `within` seconds (any answer: it is reachable).

    Reported to Storage's outage like every call, a probe that gets no answer in time included: an
    unanswered request counts as Storage being unavailable, not only a refused one.
    """
    try:
        async with asyncio.timeout(within):
            await storage.ping()
    except StorageUnavailable:
        return False
    except TimeoutError:
        STORAGE.failed(StorageUnavailable(f"storage did not answer within {within:g} s"))
        return False
    except VoicegateError:
        return True  # an answer (refused, busy): Storage is there
    return True


@dataclass(eq=False)
class StorageProbe:
    """Whether `storage` answers (`answers` within `within` seconds), asked at most once every `fresh_for`
    seconds however often it is wanted: a balancer polling every instance's readiness would otherwise cost
    Storage a request per poll (and, in embedded mode, the database a transaction). Callers that come while
    it is being asked wait for that answer rather than asking again."""

    storage: ObjectStorage
    within: float
    fresh_for: float
    clock: Callable[[], float] = time.monotonic
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    #: When the latest answer came (by `clock`), and what it was.
    _answer: tuple[float, bool] | None = field(default=None, init=False)

    async def answers(self) -> bool:
        """Storage's latest answer if it is fresh, else a new one."""
        async with self._lock:
            if self._answer is not None and self.clock() - self._answer[0] < self.fresh_for:
                return self._answer[1]
            up = await answers(self.storage, self.within)
            # Timed from when it came, not when it was asked: an answer that took the whole `within` (Storage
            # silent) is kept as long as any other, so callers waiting meanwhile do not each ask again.
            self._answer = (self.clock(), up)
            return up


def _api_error(response: httpx.Response) -> StorageApiError:
    """Storage's error body as storage3 raises it, so `_translated` reads it the same way."""
    try:
        body = response.json()
        return StorageApiError(body["message"], body["error"], body["statusCode"])
    except (KeyError, TypeError, ValueError):
        return StorageApiError(f"Unable to parse error message: {response.text}", "InternalError", response.status_code)


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
