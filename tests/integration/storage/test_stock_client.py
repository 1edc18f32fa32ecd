"""The stock storage3 client (from the `supabase` package) against the stand-in: the whole signed
upload (signed by the service, as the API hands it out) → signed download (by its owner) round trip,
info, exists, HEAD, download and remove."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.storage.conftest import SERVICE_KEY, StorageServer, user_token

BUCKET = "voice-samples"
AUDIO = b"RIFF" + bytes(range(256)) * 300  # not a real WAV; Storage does not sniff


async def test_signed_upload_then_signed_download_round_trip(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/takes/first take.wav"
    async with storage_server.client(SERVICE_KEY) as service, storage_server.client(user_token(alice)) as client:
        signed = await service.from_(BUCKET).create_signed_upload_url(path)
        assert signed["path"] == path
        assert signed["signed_url"].startswith(f"{storage_server.storage_url}/object/upload/sign/{BUCKET}/")

        files = client.from_(BUCKET)
        uploaded = await files.upload_to_signed_url(path, signed["token"], AUDIO, {"content-type": "audio/wav"})
        assert uploaded.full_path == f"{BUCKET}/{path}"

        url = (await files.create_signed_url(path, 60))["signedURL"]
        assert url is not None
        response = await http.get(url)
        assert response.status_code == 200
        assert response.content == AUDIO
        assert response.headers["content-type"] == "audio/wav"
        # The file backend's `mtime` ETag: the stored file's modification time and size, in hexadecimal.
        stored = (storage_server.root / BUCKET / path).stat()
        assert response.headers["etag"] == f'"{stored.st_mtime_ns:x}-{stored.st_size:x}"'
        assert "content-disposition" not in response.headers
        assert "expires" in response.headers

        # Clients append `&download=` to the signed URL themselves (storage-js, storage3).
        attachment = await http.get(f"{url}&download=take.wav")
        assert attachment.headers["content-disposition"] == "attachment; filename*=UTF-8''take.wav"

        info = await files.info(path)
        assert info["name"] == path
        assert info["bucket_id"] == BUCKET
        assert info["size"] == len(AUDIO)
        assert info["content_type"] == "audio/wav"
        assert info["cache_control"] == "max-age=3600"  # storage3 sends cacheControl=3600 in the form
        assert await files.exists(path) is True
        assert await files.download(path) == AUDIO

        row = storage_server.row(BUCKET, path)
        assert row is not None
        assert row["owner_id"] is None  # signed by the service key, which has no `sub`
        assert row["metadata"]["size"] == len(AUDIO)
        assert row["metadata"]["mimetype"] == "audio/wav"
        assert set(row["metadata"]) == {
            "eTag",
            "size",
            "mimetype",
            "cacheControl",
            "lastModified",
            "contentLength",
            "httpStatusCode",
        }
        assert storage_server.files() == [f"{BUCKET}/{path}"]

        assert await files.remove([path]) == []  # owners read their folder; only the service deletes
        removed = await service.from_(BUCKET).remove([path, f"{alice}/never-uploaded.wav"])
        assert [r["name"] for r in removed] == [path]
        assert await files.exists(path) is False
        assert storage_server.row(BUCKET, path) is None
        assert storage_server.files() == []
