"""Bucket limits (size, MIME allow-list) enforced while the body streams in, and the error envelope."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from storage3.exceptions import StorageApiError

from backend.db.pool import create_pool
from backend.db.units import Database
from backend.settings import Settings
from standins.storage.route_requests import LATEST_EXPIRY
from standins.storage.routes import storage_router
from standins.storage.tokens import sign_download_token
from tests.integration.storage.conftest import SECRET, SERVICE_KEY, StorageServer, user_token, verify_access_token

TOO_LARGE = {
    "statusCode": "413",
    "error": "Payload too large",
    "message": "The object exceeded the maximum allowed size",
    "code": "EntityTooLarge",
}


async def signed_upload(storage_server: StorageServer, bucket: str, path: str) -> str:
    """An upload token the service signed, as the API hands one out."""
    async with storage_server.client(SERVICE_KEY) as client:
        return (await client.from_(bucket).create_signed_upload_url(path))["token"]


async def test_upload_over_the_bucket_limit_leaves_nothing(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = users
    # voice-previews allows 10 MiB (supabase/config.toml); one byte more is refused mid-stream.
    path = f"{alice}/preview.wav"
    token = await signed_upload(storage_server, "voice-previews", path)
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
    token = await signed_upload(storage_server, "voice-samples", path)
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
    token = await signed_upload(storage_server, "voice-samples", path)
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


async def test_a_name_too_long_for_a_file_is_an_invalid_key_before_anything_is_signed_or_written(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    headers = {"Authorization": f"Bearer {user_token(alice)}", "content-type": "audio/wav"}
    base = storage_server.storage_url
    long_segment = f"{alice}/{'s' * 252}.wav"  # 256 bytes: one more than a file name may have
    long_key = f"{alice}/" + "/".join(["d" * 200] * 5) + "/a.wav"  # segments fine, 1049 bytes in all
    for name in (long_segment, long_key):
        for method, url in (
            ("POST", f"{base}/object/upload/sign/voice-samples/{name}"),
            ("POST", f"{base}/object/voice-samples/{name}"),
            ("PUT", f"{base}/object/voice-samples/{name}"),
            ("POST", f"{base}/object/sign/voice-samples/{name}"),
        ):
            body = b'{"expiresIn": 60}' if "/object/sign/" in url else b"RIFF"
            response = await http.request(method, url, headers=headers, content=body)
            assert response.status_code == 400, (method, url, response.text)
            refused = response.json()
            assert (refused["statusCode"], refused["code"]) == ("400", "InvalidKey")
            assert refused["message"].startswith(f"Invalid key: voice-samples/{alice}/")
            assert len(refused["message"]) < 250
        assert storage_server.row("voice-samples", name) is None
    assert storage_server.files() == []


async def test_a_60_kb_path_is_an_invalid_key_and_is_not_echoed_into_the_log(
    db_dsn: str, tmp_path: Path, users: tuple[uuid.UUID, uuid.UUID], caplog: pytest.LogCaptureFixture
) -> None:
    # In-process, as voicegate's own client reaches the stand-in: an HTTP server would refuse a request
    # line this long before the app saw it.
    alice, _ = users
    pool = create_pool(db_dsn, Settings(db_pool_min=1, db_pool_max=2, db_connect_timeout=10).pool_limits)
    await pool.open(wait=True)
    app = Litestar(
        route_handlers=[storage_router(Database(pool), SECRET, tmp_path / "objects", verify_access_token)],
        logging_config=None,
    )
    name = f"{alice}/" + "a/" * 30_000 + "take.wav"
    caplog.set_level(logging.DEBUG)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://storage") as client:
            response = await client.post(
                f"/storage/v1/object/upload/sign/voice-samples/{name}",
                headers={"Authorization": f"Bearer {user_token(alice)}"},
            )
    finally:
        await pool.close()
    assert response.status_code == 400
    assert (response.json()["code"], len(response.json()["message"])) == ("InvalidKey", len("Invalid key: ") + 203)
    # httpx logs each request's URL at INFO, and the client here is this test's own: voicegate's process quiets
    # httpx (voicegate.cli.configure_logging), which this test does not run. What must not carry the path is
    # what the stand-in, and all under it, logs.
    served = [record for record in caplog.records if record.name != "httpx"]
    assert all(len(record.getMessage()) < 1000 for record in served)
    assert not (tmp_path / "objects").exists()


async def test_expires_in_past_the_last_date_a_url_can_name_is_an_invalid_parameter(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/take.wav"
    async with storage_server.client(SERVICE_KEY) as client:
        await client.from_("voice-samples").upload(path, b"RIFF", {"content-type": "audio/wav"})
    url = f"{storage_server.storage_url}/object/sign/voice-samples/{path}"
    headers = {"Authorization": f"Bearer {user_token(alice)}"}
    too_late = LATEST_EXPIRY - int(time.time()) + 1
    for expires_in in (too_late, str(too_late), 10**30, 1e300):
        response = await http.post(url, headers=headers, json={"expiresIn": expires_in})
        assert (response.status_code, response.json()) == (
            400,
            {
                "statusCode": "400",
                "error": "InvalidParameter",
                "message": "Invalid Parameter expiresIn",
                "code": "InvalidParameter",
            },
        ), expires_in
    for nonsense in (0, -5, "9" * 5000, "soon", None, True):
        response = await http.post(url, headers=headers, json={"expiresIn": nonsense})
        assert (response.status_code, response.json()["code"]) == (400, "InvalidRequest"), nonsense

    # A century is fine, and its URL downloads with an Expires header in that century.
    century = 100 * 365 * 86400
    signed = await http.post(url, headers=headers, json={"expiresIn": century})
    assert signed.status_code == 200, signed.text
    downloaded = await http.get(f"{storage_server.storage_url}{signed.json()['signedURL']}")
    assert (downloaded.status_code, downloaded.content) == (200, b"RIFF")
    expires = parsedate_to_datetime(downloaded.headers["expires"])
    assert abs(expires.timestamp() - (time.time() + century)) < 60


async def test_a_download_token_that_outlives_every_date_still_downloads(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    # Signed elsewhere with the same secret: the stand-in must not fail on an expiry no date can hold.
    alice, _ = users
    path = f"{alice}/take.wav"
    async with storage_server.client(SERVICE_KEY) as client:
        await client.from_("voice-samples").upload(path, b"RIFF", {"content-type": "audio/wav"})
    token = sign_download_token(SECRET, "voice-samples", path, expires_in=10**15)
    response = await http.get(f"{storage_server.storage_url}/object/sign/voice-samples/{path}", params={"token": token})
    assert (response.status_code, response.content) == (200, b"RIFF")
    assert response.headers["expires"] == "Fri, 31 Dec 9999 23:59:59 GMT"
