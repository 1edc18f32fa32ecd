"""Listing a folder as Storage's `POST /object/list/{bucket}` does (supabase/storage 4fa61fba,
src/http/routes/object/listObjects.ts over its `storage.search`, migrations/tenant/0063), under the caller's RLS;
and the anon role, which sees and writes nothing in voicegate's buckets. Driven with the stock storage3 client."""

from __future__ import annotations

import uuid

import httpx
import pytest
from storage3.exceptions import StorageApiError

from tests.integration.storage.conftest import SERVICE_KEY, StorageServer, access_token, user_token
from tests.integration.storage.test_access import WAV, assert_envelope, put_object

BUCKET = "voice-samples"


async def test_a_folder_lists_as_storage_lists_it(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, bob = users
    for name in ("A.wav", "b/one.wav", "c.wav", "b/two.wav"):
        await put_object(storage_server, f"{alice}/{name}")

    async with storage_server.client(user_token(alice)) as client:
        files = client.from_(BUCKET)
        listed = await files.list(str(alice))
        # One level: files and folders together by name, case aside; a folder has no id or metadata.
        assert [(e["name"], e["id"] is None) for e in listed] == [("A.wav", False), ("b", True), ("c.wav", False)]
        assert listed[0]["metadata"]["mimetype"] == "audio/wav"
        assert [e["name"] for e in await files.list(f"{alice}/b")] == ["one.wav", "two.wav"]
        assert [e["name"] for e in await files.list(f"{alice}/", {"search": "c"})] == ["c.wav"]
        assert [e["name"] for e in await files.list(str(alice), {"limit": 1, "offset": 1})] == ["b"]
        # Any other order puts folders first.
        newest = await files.list(str(alice), {"sortBy": {"column": "created_at", "order": "desc"}})
        assert [e["name"] for e in newest] == ["b", "c.wav", "A.wav"]
        assert await files.list("") == [{**listed[1], "name": str(alice)}]
        with pytest.raises(StorageApiError) as refused:
            await files.list(str(alice), {"sortBy": {"column": "size"}})
        assert (refused.value.status, refused.value.code) == ("400", "InvalidRequest")

    async with storage_server.client(user_token(bob)) as client:
        assert await client.from_(BUCKET).list(str(alice)) == []
        assert await client.from_(BUCKET).list("") == []
    async with storage_server.client(SERVICE_KEY) as client:
        assert [e["name"] for e in await client.from_(BUCKET).list(str(alice))] == ["A.wav", "b", "c.wav"]
        assert await client.from_("no-such-bucket").list("") == []  # Storage does not look the bucket up


async def test_the_anon_role_lists_nothing_and_writes_nothing(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    path = f"{alice}/mine.wav"
    await put_object(storage_server, path)
    anon = access_token({"role": "anon", "iss": "supabase-demo"})

    async with storage_server.client(anon) as client:
        files = client.from_(BUCKET)
        assert await files.list(str(alice)) == []
        [signed] = await files.create_signed_urls([path], 60)
        assert (signed["error"], signed["signedURL"]) == (
            "Either the object does not exist or you do not have access to it",
            None,
        )
        with pytest.raises(StorageApiError) as refused:
            await files.upload(f"{alice}/anon.wav", b"RIFF", WAV)
        assert (refused.value.status, refused.value.code) == ("403", "Unauthorized")
        assert await client.list_buckets() == []

    # The gateway's rule: with no Authorization header, the `apikey` header is the bearer token.
    response = await http.post(
        f"{storage_server.storage_url}/object/upload/sign/{BUCKET}/{alice}/anon.wav", headers={"apikey": anon}
    )
    assert_envelope(response, "403", "AccessDenied")
    assert storage_server.row(BUCKET, f"{alice}/anon.wav") is None
