"""Who may do what: RLS at signing time and on reads, writes and deletes, and the URL tokens' scope, path,
expiry and signature. In voicegate's buckets users only read their own folder; what they upload comes
through an upload URL the service signed, as the API hands it out. Every refusal is checked in Storage's
envelope (HTTP 400, logical status in the body), which is what the stock clients parse."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions

from standins.storage.tokens import sign_download_token, sign_upload_token
from tests.integration.storage.conftest import SECRET, SERVICE_KEY, StorageServer, user_token

BUCKET = "voice-samples"
WAV = {"content-type": "audio/wav"}
NOT_FOUND = {"statusCode": "404", "error": "not_found", "message": "Object not found", "code": "NoSuchKey"}


def bearer(user: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(user)}"}


async def put_object(storage_server: StorageServer, path: str, data: bytes = b"voice") -> None:
    """Upload through a URL the service signed (as the API hands one out) with the stock client."""
    async with storage_server.client(SERVICE_KEY) as client:
        files = client.from_(BUCKET)
        signed = await files.create_signed_upload_url(path)
        await files.upload_to_signed_url(path, signed["token"], data, WAV)


def assert_envelope(response: httpx.Response, status: str, code: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"statusCode", "error", "message", "code"}
    assert (body["statusCode"], body["code"]) == (status, code), body
    return body


async def test_users_sign_no_uploads_the_service_does(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, bob = users
    async with storage_server.client(user_token(alice)) as client:
        files = client.from_(BUCKET)
        for path in (f"{alice}/mine.wav", f"{bob}/theirs.wav", "top-level.wav", f"x/{alice}/nested.wav"):
            with pytest.raises(StorageApiError) as refused:
                await files.create_signed_upload_url(path)
            assert (refused.value.status, refused.value.code) == ("403", "Unauthorized")

    response = await http.post(
        f"{storage_server.storage_url}/object/upload/sign/{BUCKET}/{alice}/raw.wav", headers=bearer(alice)
    )
    assert_envelope(response, "403", "AccessDenied")
    async with storage_server.client(SERVICE_KEY) as client:
        assert (await client.from_(BUCKET).create_signed_upload_url(f"{alice}/mine.wav"))["token"]
    # The check is a rolled-back insert: it leaves nothing behind.
    assert storage_server.row(BUCKET, f"{alice}/mine.wav") is None
    assert storage_server.row(BUCKET, f"{bob}/theirs.wav") is None


async def test_other_user_cannot_sign_or_read_and_learns_nothing_and_nobody_but_the_service_deletes(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, bob = users
    path = f"{alice}/private.wav"
    await put_object(storage_server, path)
    base = storage_server.storage_url

    existing = await http.post(f"{base}/object/sign/{BUCKET}/{path}", json={"expiresIn": 60}, headers=bearer(bob))
    missing = await http.post(
        f"{base}/object/sign/{BUCKET}/{alice}/no-such.wav", json={"expiresIn": 60}, headers=bearer(bob)
    )
    # Same status, same body: Bob cannot tell Alice's object from a path that holds nothing.
    assert assert_envelope(existing, "404", "NoSuchKey") == NOT_FOUND
    assert (existing.status_code, existing.json()) == (missing.status_code, missing.json())

    for url in (f"{base}/object/info/{BUCKET}/{path}", f"{base}/object/authenticated/{BUCKET}/{path}"):
        assert assert_envelope(await http.get(url, headers=bearer(bob)), "404", "NoSuchKey") == NOT_FOUND
    assert (await http.head(f"{base}/object/{BUCKET}/{path}", headers=bearer(bob))).status_code == 400

    async with storage_server.client(user_token(bob)) as client:
        assert await client.from_(BUCKET).remove([path]) == []
    # Storage looks the object up as superuser before it deletes as the caller, so it refuses an existing one
    # and finds no missing one (src/storage/object.ts): the stand-in looks it up as the caller, so both are
    # not found (issue 45; test_hostile_input.py).
    response = await http.delete(f"{base}/object/{BUCKET}/{path}", headers=bearer(bob))
    assert assert_envelope(response, "404", "NoSuchKey") == NOT_FOUND
    response = await http.delete(f"{base}/object/{BUCKET}/{alice}/no-such.wav", headers=bearer(bob))
    assert assert_envelope(response, "404", "NoSuchKey") == NOT_FOUND
    assert storage_server.row(BUCKET, path) is not None
    assert storage_server.files() == [f"{BUCKET}/{path}"]

    # Alice herself can read its info (authenticated variant) and HEAD it; only the service deletes it.
    info = await http.get(f"{base}/object/info/authenticated/{BUCKET}/{path}", headers=bearer(alice))
    assert info.status_code == 200
    assert info.json()["size"] == 5
    head = await http.head(f"{base}/object/authenticated/{BUCKET}/{path}", headers=bearer(alice))
    assert head.status_code == 200
    assert head.headers["content-length"] == "5"
    assert head.headers["content-type"] == "audio/wav"
    assert head.content == b""
    refused = await http.delete(f"{base}/object/{BUCKET}/{path}", headers=bearer(alice))
    assert_envelope(refused, "403", "AccessDenied")
    assert storage_server.files() == [f"{BUCKET}/{path}"]
    deleted = await http.delete(f"{base}/object/{BUCKET}/{path}", headers={"Authorization": f"Bearer {SERVICE_KEY}"})
    assert deleted.json() == {"message": "Successfully deleted"}
    assert storage_server.row(BUCKET, path) is None
    assert storage_server.files() == []


async def test_download_and_upload_tokens_are_not_interchangeable(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/scoped.wav"
    await put_object(storage_server, path, b"original")
    base = storage_server.storage_url
    async with storage_server.client(SERVICE_KEY) as client:
        upload_token = (await client.from_(BUCKET).create_signed_upload_url(f"{alice}/other.wav"))["token"]
    async with storage_server.client(user_token(alice)) as client:
        download_url = (await client.from_(BUCKET).create_signed_url(path, 60))["signedURL"]
    assert download_url is not None
    download_token = httpx.URL(download_url).params["token"]

    # A download token replayed as an upload token: refused, and the object is untouched.
    response = await http.put(
        f"{base}/object/upload/sign/{BUCKET}/{path}", params={"token": download_token}, content=b"overwritten"
    )
    assert_envelope(response, "400", "InvalidJWT")
    assert (await http.get(download_url)).content == b"original"

    # An upload token replayed as a download token.
    upload_for_path = sign_upload_token(SECRET, BUCKET, path, owner=str(alice), upsert=True, expires_in=60)
    for token in (upload_token, upload_for_path):
        response = await http.get(f"{base}/object/sign/{BUCKET}/{path}", params={"token": token})
        assert_envelope(response, "400", "InvalidJWT")

    # Nor is a URL token an access token, though the same secret signs both.
    response = await http.get(
        f"{base}/object/info/{BUCKET}/{path}", headers={"Authorization": f"Bearer {download_token}"}
    )
    assert_envelope(response, "400", "InvalidJWT")


async def test_token_for_one_path_does_not_open_another(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    base = storage_server.storage_url
    await put_object(storage_server, f"{alice}/x.wav", b"x")
    await put_object(storage_server, f"{alice}/y.wav", b"y")
    async with storage_server.client(SERVICE_KEY) as client:
        upload_x = (await client.from_(BUCKET).create_signed_upload_url(f"{alice}/z.wav"))["token"]
    async with storage_server.client(user_token(alice)) as client:
        signed_x = (await client.from_(BUCKET).create_signed_url(f"{alice}/x.wav", 60))["signedURL"]
        download_x = httpx.URL(signed_x or "").params["token"]

    response = await http.put(
        f"{base}/object/upload/sign/{BUCKET}/{alice}/w.wav", params={"token": upload_x}, content=b"w"
    )
    assert_envelope(response, "400", "InvalidSignature")
    assert storage_server.row(BUCKET, f"{alice}/w.wav") is None

    response = await http.get(f"{base}/object/sign/{BUCKET}/{alice}/y.wav", params={"token": download_x})
    assert_envelope(response, "400", "InvalidSignature")


async def test_expired_and_tampered_tokens_are_refused(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/t.wav"
    await put_object(storage_server, path)
    base = storage_server.storage_url
    an_hour_ago = int(time.time()) - 3600
    expired_up = sign_upload_token(SECRET, BUCKET, path, owner=str(alice), upsert=True, expires_in=60, now=an_hour_ago)
    expired_down = sign_download_token(SECRET, BUCKET, path, expires_in=60, now=an_hour_ago)
    put_url = f"{base}/object/upload/sign/{BUCKET}/{path}"
    get_url = f"{base}/object/sign/{BUCKET}/{path}"

    assert_envelope(await http.put(put_url, params={"token": expired_up}, content=b"late"), "400", "ExpiredToken")
    assert_envelope(await http.get(get_url, params={"token": expired_down}), "400", "ExpiredToken")

    # Tampering: take a valid token for another object and rewrite its url claim, keeping the signature.
    valid = sign_download_token(SECRET, BUCKET, f"{alice}/elsewhere.wav", expires_in=60)
    header, payload, signature = valid.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["url"] = f"{BUCKET}/{path}"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    assert_envelope(await http.get(get_url, params={"token": forged}), "400", "InvalidJWT")

    foreign = sign_download_token("another-secret-0123456789abcdef-0123456789", BUCKET, path, expires_in=60)
    assert_envelope(await http.get(get_url, params={"token": foreign}), "400", "InvalidJWT")
    assert_envelope(await http.get(get_url), "400", "InvalidJWT")
    assert (
        await http.get(get_url, params={"token": sign_download_token(SECRET, BUCKET, path, expires_in=60)})
    ).content == b"voice"


async def test_upsert_is_needed_to_replace(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/again.wav"
    await put_object(storage_server, path, b"first")
    async with storage_server.client(SERVICE_KEY) as client:
        files = client.from_(BUCKET)
        with pytest.raises(StorageApiError) as duplicate:
            await files.create_signed_upload_url(path)
        assert (duplicate.value.status, duplicate.value.code) == ("409", "Duplicate")
        signed = await files.create_signed_upload_url(path, CreateSignedUploadUrlOptions(upsert="true"))
        await files.upload_to_signed_url(path, signed["token"], b"second", WAV)
        assert await files.download(path) == b"second"
    assert storage_server.files() == [f"{BUCKET}/{path}"]


async def test_direct_upload_runs_under_the_callers_rls(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, bob = users
    async with storage_server.client(user_token(alice)) as client:
        files = client.from_(BUCKET)
        for path in (f"{alice}/direct.wav", f"{bob}/direct.wav"):
            with pytest.raises(StorageApiError) as refused:
                await files.upload(path, b"intruder", WAV)
            assert (refused.value.status, refused.value.code) == ("403", "Unauthorized")
    async with storage_server.client(SERVICE_KEY) as client:
        uploaded = await client.from_(BUCKET).upload(f"{alice}/direct.wav", b"direct", WAV)
        assert uploaded.full_path == f"{BUCKET}/{alice}/direct.wav"
    row = storage_server.row(BUCKET, f"{alice}/direct.wav")
    assert row is not None
    # The service key has no `sub`: its objects have no owner, as on Supabase.
    assert row["owner_id"] is None
    assert storage_server.row(BUCKET, f"{bob}/direct.wav") is None
    # The refused bodies were streamed to temporary files; they went with their transactions.
    assert storage_server.files() == [f"{BUCKET}/{alice}/direct.wav"]
