"""voicegate's one storage interface (`SupabaseObjectStorage`, over storage3, and a streamed download for
digests) against the stand-in."""

from __future__ import annotations

import hashlib
import io
import uuid

import httpx
import pytest

from backend.errors import Conflict, NotFound, UnsupportedMediaType
from backend.storage.client import ObjectStorage, SupabaseObjectStorage
from backend.storage.digest import Digest
from tests.integration.storage.conftest import SERVICE_KEY, StorageServer

BUCKET = "voice-renders"


async def test_service_client_signs_uploads_downloads_and_removes(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/render.wav"
    async with SupabaseObjectStorage(storage_server.storage_url, SERVICE_KEY) as storage:
        client: ObjectStorage = storage
        signed = await client.create_signed_upload_url(BUCKET, path)
        assert signed.path == path
        # What a browser does with the signed URL: a raw PUT, no credentials.
        response = await http.put(signed.url, content=b"first", headers={"content-type": "audio/wav"})
        assert response.status_code == 200, response.text
        row = storage_server.row(BUCKET, path)
        assert row is not None
        assert row["owner_id"] is None  # signed by the service key, as on Supabase

        info = await client.info(BUCKET, path)
        assert info is not None
        assert (info.name, info.bucket, info.size, info.content_type) == (path, BUCKET, 5, "audio/wav")
        assert info.last_modified is not None

        url = await client.create_signed_url(BUCKET, path, 60)
        assert (await http.get(url)).content == b"first"

        with pytest.raises(Conflict):
            await client.upload(BUCKET, path, b"second", "audio/wav")
        await client.upload(BUCKET, path, io.BytesIO(b"second, streamed"), "audio/wav", upsert=True)
        assert await client.download(BUCKET, path) == b"second, streamed"
        assert await client.digest(BUCKET, path) == Digest.of(b"second, streamed")
        # Read in chunks as it streams: an object larger than one chunk hashes the same.
        large = bytes(range(256)) * 1024
        await client.upload(BUCKET, f"{alice}/large.wav", large, "audio/wav")
        assert await client.digest(BUCKET, f"{alice}/large.wav") == Digest(
            hashlib.sha256(large).hexdigest(), len(large)
        )
        assert await client.remove(BUCKET, [f"{alice}/large.wav"]) == [f"{alice}/large.wav"]

        with pytest.raises(UnsupportedMediaType):
            await client.upload(BUCKET, f"{alice}/x.ogg", b"x", "audio/ogg")

        assert await client.remove(BUCKET, [path, f"{alice}/absent.wav"]) == [path]
        assert await client.info(BUCKET, path) is None
        with pytest.raises(NotFound):
            await client.download(BUCKET, path)
        with pytest.raises(NotFound):
            await client.create_signed_url(BUCKET, path, 60)
        with pytest.raises(NotFound):
            await client.digest(BUCKET, path)
    assert storage_server.files() == []


async def test_the_head_of_an_object_is_its_first_bytes_whatever_its_length(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """What a finalize sniffs: the first bytes of a large object, and a short one whole; a missing one is NotFound."""
    alice, _ = users
    large, short = bytes(range(256)) * 8192, b"RIFF"
    async with SupabaseObjectStorage(storage_server.storage_url, SERVICE_KEY) as storage:
        await storage.upload(BUCKET, f"{alice}/head-large.wav", large, "audio/wav")
        await storage.upload(BUCKET, f"{alice}/head-short.wav", short, "audio/wav")
        assert await storage.head(BUCKET, f"{alice}/head-large.wav", 64) == large[:64]
        assert await storage.head(BUCKET, f"{alice}/head-short.wav", 64) == short
        with pytest.raises(NotFound):
            await storage.head(BUCKET, f"{alice}/head-missing.wav", 64)
