"""Storage's bucket routes (supabase/storage src/http/routes/bucket/) through the stock storage3 client: a user
is refused each as Storage refuses one on a project with no policy on `storage.buckets` (create: row-level
security; update and delete: not found; empty: a real 403, the service key only), and the service key creates,
reads, updates, empties and deletes a bucket, with Storage's error shapes for what it refuses. And the public
object routes a client reaches without a token: `GET /object/info/public/...` and `HEAD /object/public/...`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError

from tests.integration.storage.conftest import SERVICE_KEY, StorageServer, user_token

AUDIO = b"RIFF" + bytes(range(256)) * 8


def refusal(exc: pytest.ExceptionInfo[StorageApiError]) -> tuple[str, str, str]:
    """What storage3 makes of Storage's envelope: the logical status, the `error` and the message."""
    return str(exc.value.status), exc.value.code, exc.value.message


async def test_a_user_is_refused_every_bucket_change(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    async with storage_server.client(user_token(alice)) as client:
        with pytest.raises(StorageApiError) as created:
            await client.create_bucket("mine")
        assert refusal(created) == ("403", "Unauthorized", "new row violates row-level security policy")
        with pytest.raises(StorageApiError) as updated:
            await client.update_bucket("voice-samples", {"public": True})
        assert refusal(updated) == ("404", "Bucket not found", "Bucket not found")
        with pytest.raises(StorageApiError) as deleted:
            await client.delete_bucket("voice-metadata")
        assert refusal(deleted) == ("404", "Bucket not found", "Bucket not found")
        with pytest.raises(StorageApiError) as emptied:
            await client.empty_bucket("voice-samples")
        assert refusal(emptied) == ("403", "Unauthorized", "Access denied: Invalid role")

    # Storage's HTTP statuses: its legacy 400 for all but the role check, a real 403 there.
    headers = {"Authorization": f"Bearer {user_token(alice)}"}
    refused = await http.post(f"{storage_server.storage_url}/bucket/voice-samples/empty", headers=headers, json={})
    assert refused.status_code == 403
    assert refused.json() == {
        "statusCode": "403",
        "error": "Unauthorized",
        "message": "Access denied: Invalid role",
        "code": "AccessDenied",
    }
    created_raw = await http.post(f"{storage_server.storage_url}/bucket", headers=headers, json={"name": "mine"})
    assert created_raw.status_code == 400
    async with storage_server.client(SERVICE_KEY) as service:
        samples = await service.get_bucket("voice-samples")
        assert samples.public is False
        assert {bucket.id for bucket in await service.list_buckets()} == {
            "voice-samples",
            "voice-previews",
            "voice-renders",
            "voice-metadata",
        }


async def test_the_service_key_makes_changes_empties_and_deletes_a_bucket(storage_server: StorageServer) -> None:
    async with storage_server.client(SERVICE_KEY) as service:
        options: Any = {"public": True, "file_size_limit": "1.5MB", "allowed_mime_types": ["audio/*", ""]}
        assert await service.create_bucket("takes", options=options) == {"name": "takes"}
        made = await service.get_bucket("takes")
        assert (made.name, made.public, made.file_size_limit, made.allowed_mime_types) == (
            "takes",
            True,
            1_500_000,
            ["audio/*"],
        )
        with pytest.raises(StorageApiError) as again:
            await service.create_bucket("takes")
        assert refusal(again) == ("409", "Duplicate", "The resource already exists")

        changed = await service.update_bucket("takes", {"public": False, "file_size_limit": 1000})
        assert changed == {"message": "Successfully updated"}
        made = await service.get_bucket("takes")
        assert (made.public, made.file_size_limit, made.allowed_mime_types) == (False, 1000, ["audio/*"])

        files = service.from_("takes")
        await files.upload("a/one.wav", AUDIO[:900], {"content-type": "audio/wav"})
        with pytest.raises(StorageApiError) as too_big:
            await files.upload("a/two.wav", AUDIO, {"content-type": "audio/wav"})
        assert refusal(too_big)[0] == "413"  # the new limit holds
        with pytest.raises(StorageApiError) as full:
            await service.delete_bucket("takes")
        assert refusal(full) == ("409", "ResourceNotEmpty", "The bucket you tried to delete is not empty")

        emptied = await service.empty_bucket("takes")
        assert emptied == {"message": "Empty bucket has been queued. Completion may take up to an hour."}
        assert await files.list("a") == []
        assert not (storage_server.root / "takes" / "a" / "one.wav").exists()
        assert await service.delete_bucket("takes") == {"message": "Successfully deleted"}
        with pytest.raises(StorageApiError) as gone:
            await service.get_bucket("takes")
        assert refusal(gone) == ("404", "Bucket not found", "Bucket not found")
        with pytest.raises(StorageApiError) as gone_again:
            await service.delete_bucket("takes")
        assert refusal(gone_again) == ("404", "Bucket not found", "Bucket not found")


#: Bodies Storage refuses, with the logical status and code it refuses each with.
REFUSED_BODIES: list[tuple[dict[str, Any], str, str]] = [
    ({"id": "x"}, "400", "InvalidRequest"),
    ({"name": " padded"}, "400", "InvalidBucketName"),
    ({"name": "a/b"}, "400", "InvalidBucketName"),
    ({"name": "ok", "file_size_limit": "12 parsecs"}, "400", "InvalidRequest"),
    ({"name": "ok", "file_size_limit": "1GB"}, "413", "EntityTooLarge"),
    ({"name": "ok", "allowed_mime_types": ["not a type"]}, "415", "InvalidMimeType"),
    ({"name": "ok", "type": "ANALYTICS"}, "409", "FeatureNotEnabled"),
]


async def test_a_bucket_storage_refuses_is_refused_in_its_words(
    storage_server: StorageServer, http: httpx.AsyncClient
) -> None:
    headers = {"Authorization": f"Bearer {SERVICE_KEY}"}
    for body, status, code in REFUSED_BODIES:
        response = await http.post(f"{storage_server.storage_url}/bucket", headers=headers, json=body)
        assert response.status_code == 400, body
        assert (response.json()["statusCode"], response.json()["code"]) == (status, code), body
    listed = await http.get(f"{storage_server.storage_url}/bucket", headers=headers)
    assert "ok" not in {bucket["id"] for bucket in listed.json()}


async def test_public_info_and_head_serve_a_public_bucket_only(
    storage_server: StorageServer, http: httpx.AsyncClient
) -> None:
    async with storage_server.client(SERVICE_KEY) as service:
        await service.create_bucket("open", options={"public": True})
        await service.from_("open").upload("a/x.wav", AUDIO, {"content-type": "audio/wav"})
        await service.from_("voice-samples").upload("a/x.wav", AUDIO, {"content-type": "audio/wav"})
    base = storage_server.storage_url

    info = await http.get(f"{base}/object/info/public/open/a/x.wav")
    assert info.status_code == 200, info.text
    assert (info.json()["name"], info.json()["size"], info.json()["content_type"]) == (
        "a/x.wav",
        len(AUDIO),
        "audio/wav",
    )
    head = await http.head(f"{base}/object/public/open/a/x.wav")
    assert head.status_code == 200
    assert (head.headers["content-type"], head.headers["content-length"]) == ("audio/wav", str(len(AUDIO)))
    assert head.content == b""

    missing = await http.get(f"{base}/object/info/public/open/a/none.wav")
    assert (missing.status_code, missing.json()["code"]) == (400, "NoSuchKey")
    for url in (f"{base}/object/info/public/voice-samples/a/x.wav", f"{base}/object/public/voice-samples/a/x.wav"):
        private = await http.request("GET" if "/info/" in url else "HEAD", url)
        assert private.status_code == 400
    private_info = await http.get(f"{base}/object/info/public/voice-samples/a/x.wav")
    assert private_info.json() == {
        "statusCode": "404",
        "error": "Bucket not found",
        "message": "Bucket not found",
        "code": "NoSuchBucket",
    }
