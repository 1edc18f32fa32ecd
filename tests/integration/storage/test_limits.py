"""Bucket limits (size, MIME allow-list) enforced while the body streams in, and the error envelope."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from storage3.exceptions import StorageApiError

from tests.integration.storage.conftest import StorageServer, user_token

TOO_LARGE = {
    "statusCode": "413",
    "error": "Payload too large",
    "message": "The object exceeded the maximum allowed size",
    "code": "EntityTooLarge",
}


async def signed_upload(storage_server: StorageServer, user: uuid.UUID, bucket: str, path: str) -> str:
    async with storage_server.client(user_token(user)) as client:
        return (await client.from_(bucket).create_signed_upload_url(path))["token"]


async def test_upload_over_the_bucket_limit_leaves_nothing(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = users
    # voice-previews allows 10 MiB (supabase/config.toml); one byte more is refused mid-stream.
    path = f"{alice}/preview.wav"
    token = await signed_upload(storage_server, alice, "voice-previews", path)
    async with storage_server.client(user_token(alice)) as client:
        files = client.from_("voice-previews")
        with pytest.raises(StorageApiError) as refused:
            await files.upload_to_signed_url(path, token, b"\0" * (10 * 1024 * 1024 + 1), {"content-type": "audio/wav"})
        assert (refused.value.status, refused.value.code) == ("413", "Payload too large")
    assert storage_server.row("voice-previews", path) is None
    assert storage_server.files() == []


async def test_limit_is_the_bucket_row_and_applies_to_raw_and_chunked_bodies(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    storage_server.set_bucket_limit("voice-samples", 1024)
    base = f"{storage_server.storage_url}/object/upload/sign/voice-samples"
    wav = {"content-type": "audio/wav"}

    # Announced length over the limit: refused before the body is stored.
    path = f"{alice}/raw.wav"
    token = await signed_upload(storage_server, alice, "voice-samples", path)
    response = await http.put(f"{base}/{path}", params={"token": token}, content=b"\1" * 1025, headers=wav)
    assert (response.status_code, response.json()) == (400, TOO_LARGE)

    # No length announced (chunked): counted while streaming.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"\2" * 300

    response = await http.put(f"{base}/{path}", params={"token": token}, content=chunks(), headers=wav)
    assert (response.status_code, response.json()) == (400, TOO_LARGE)
    assert storage_server.row("voice-samples", path) is None
    assert storage_server.files() == []

    # Exactly at the limit is fine.
    response = await http.put(f"{base}/{path}", params={"token": token}, content=b"\3" * 1024, headers=wav)
    assert response.status_code == 200, response.text
    assert response.json() == {"Key": f"voice-samples/{path}"}
    row = storage_server.row("voice-samples", path)
    assert row is not None
    assert row["metadata"]["size"] == 1024
    assert row["metadata"]["cacheControl"] == "no-cache"
    assert storage_server.files() == [f"voice-samples/{path}"]


async def test_disallowed_mime_type_is_refused(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/notes.txt"
    token = await signed_upload(storage_server, alice, "voice-samples", path)
    async with storage_server.client(user_token(alice)) as client:
        files = client.from_("voice-samples")
        # storage3's default content type is text/plain;charset=UTF-8.
        with pytest.raises(StorageApiError) as refused:
            await files.upload_to_signed_url(path, token, b"hello")
        assert (refused.value.status, refused.value.code) == ("415", "invalid_mime_type")
        assert refused.value.message == "mime type text/plain is not supported"

    response = await http.put(
        f"{storage_server.storage_url}/object/upload/sign/voice-samples/{path}",
        params={"token": token},
        content=b"<html>",
        headers={"content-type": "text/html"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": "415",
        "error": "invalid_mime_type",
        "message": "mime type text/html is not supported",
        "code": "InvalidMimeType",
    }
    assert storage_server.row("voice-samples", path) is None
    assert storage_server.files() == []


async def test_missing_object_uses_the_supabase_envelope(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    headers = {"Authorization": f"Bearer {user_token(alice)}"}
    base = storage_server.storage_url
    for url in (f"{base}/object/info/voice-samples/{alice}/none.wav", f"{base}/object/voice-samples/{alice}/none.wav"):
        response = await http.get(url, headers=headers)
        assert response.status_code == 400
        assert response.json() == {
            "statusCode": "404",
            "error": "not_found",
            "message": "Object not found",
            "code": "NoSuchKey",
        }
    response = await http.post(f"{base}/object/upload/sign/no-such-bucket/{alice}/a.wav", headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "NoSuchBucket"
    response = await http.post(f"{base}/object/upload/sign/voice-samples/{alice}/a.wav")
    assert (response.status_code, response.json()["code"]) == (400, "InvalidJWT")
    async with storage_server.client(user_token(alice)) as client:
        assert await client.from_("voice-samples").exists(f"{alice}/none.wav") is False
