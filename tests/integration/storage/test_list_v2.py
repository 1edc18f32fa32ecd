"""Listing as Storage's `POST /object/list-v2/{bucket}` does (supabase/storage 4fa61fba,
src/http/routes/object/listObjectsV2.ts, src/storage/object.ts `listObjectsV2`), under the caller's RLS: pages
with Storage's continuation token, and one folder level with `with_delimiter`. Driven with storage3's `list_v2`."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import SearchV2Result

from tests.integration.storage.conftest import SERVICE_KEY, StorageServer, user_token
from tests.integration.storage.test_access import assert_envelope, put_object

BUCKET = "voice-samples"
NAMES = ("A.wav", "b/one.wav", "b/two.wav", "c.wav", "d/e/deep.wav")


async def _every_page(storage_server: StorageServer, token: str, options: dict[str, Any]) -> list[SearchV2Result]:
    """Follow `nextCursor` until `hasNext` is false."""
    pages: list[SearchV2Result] = []
    async with storage_server.client(token) as client:
        files = client.from_(BUCKET)
        cursor: str | None = None
        while not pages or pages[-1].hasNext:
            page = await files.list_v2({**options, "cursor": cursor} if cursor else options)
            pages.append(page)
            cursor = page.nextCursor
            assert len(pages) <= 2 * len(NAMES), "the cursor does not advance"
    return pages


async def test_a_user_pages_through_their_folder_one_object_at_a_time(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = users
    for name in NAMES:
        await put_object(storage_server, f"{alice}/{name}")

    pages = await _every_page(storage_server, user_token(alice), {"prefix": f"{alice}/", "limit": 1})
    # Every object under the prefix once, by name bytewise, each page of one; the last says no more follow.
    assert [[o.name for o in page.objects] for page in pages] == [[f"{alice}/{name}"] for name in NAMES]
    assert [page.hasNext for page in pages] == [True] * (len(NAMES) - 1) + [False]
    assert all(page.folders == [] for page in pages)
    assert pages[-1].nextCursor is None
    # Storage's continuation token: base64 of `l:<the last name>`.
    assert base64.b64decode(pages[0].nextCursor or "") == f"l:{alice}/A.wav".encode()
    assert pages[0].objects[0].metadata is not None
    assert pages[0].objects[0].metadata["mimetype"] == "audio/wav"

    newest_first = await _every_page(
        storage_server,
        user_token(alice),
        {"prefix": f"{alice}/", "limit": 2, "sortBy": {"column": "created_at", "order": "desc"}},
    )
    assert [o.name for page in newest_first for o in page.objects] == [f"{alice}/{n}" for n in reversed(NAMES)]

    async with storage_server.client(user_token(alice)) as client:
        whole = await client.from_(BUCKET).list_v2({"prefix": f"{alice}/b"})
        assert (whole.hasNext, [o.name for o in whole.objects]) == (False, [f"{alice}/b/one.wav", f"{alice}/b/two.wav"])


async def test_with_delimiter_a_user_gets_the_folders_and_objects_of_one_level(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, _ = users
    for name in NAMES:
        await put_object(storage_server, f"{alice}/{name}")

    async with storage_server.client(user_token(alice)) as client:
        level = await client.from_(BUCKET).list_v2({"prefix": f"{alice}/", "with_delimiter": True})
        assert [(f.key, f.name) for f in level.folders] == [("b", f"{alice}/b/"), ("d", f"{alice}/d/")]
        assert [o.name for o in level.objects] == [f"{alice}/A.wav", f"{alice}/c.wav"]
        assert level.hasNext is False
        top = await client.from_(BUCKET).list_v2({"with_delimiter": True})
        assert ([f.name for f in top.folders], top.objects) == ([f"{alice}/"], [])

    # A page of one at a time walks the level in name order, folders and objects interleaved.
    pages = await _every_page(
        storage_server, user_token(alice), {"prefix": f"{alice}/", "with_delimiter": True, "limit": 1}
    )
    walked = [entry.name for page in pages for entry in [*page.folders, *page.objects]]
    assert walked == [f"{alice}/A.wav", f"{alice}/b/", f"{alice}/c.wav", f"{alice}/d/"]
    assert [page.hasNext for page in pages] == [True, True, True, False]


async def test_another_users_folder_lists_nothing(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, bob = users
    for name in NAMES:
        await put_object(storage_server, f"{alice}/{name}")

    async with storage_server.client(user_token(bob)) as client:
        files = client.from_(BUCKET)
        for options in ({"prefix": f"{alice}/"}, {"prefix": f"{alice}/", "with_delimiter": True}, {}):
            listed = await files.list_v2(options)
            assert (listed.hasNext, listed.folders, listed.objects) == (False, [], [])
    async with storage_server.client(SERVICE_KEY) as client:
        assert len((await client.from_(BUCKET).list_v2({"prefix": f"{alice}/"})).objects) == len(NAMES)
        assert (await client.from_("no-such-bucket").list_v2()).objects == []  # Storage does not look it up


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"limit": 0}, "InvalidRequest", "body/limit must be >= 1"),
        ({"limit": "many"}, "InvalidRequest", "body/limit must be integer"),
        ({"prefix": 7}, "InvalidRequest", "body/prefix must be string"),
        ({"with_delimiter": "yes"}, "InvalidRequest", "body/with_delimiter must be boolean"),
        ({"sortBy": {"order": "asc"}}, "InvalidRequest", "body/sortBy must have required property 'column'"),
        (
            {"sortBy": {"column": "size"}},
            "InvalidRequest",
            "body/sortBy/column must be equal to one of the allowed values",
        ),
        ({"cursor": base64.b64encode(b"x:nope").decode()}, "InvalidParameter", "Invalid Parameter continuation token"),
        (
            {"cursor": base64.b64encode(b"l:a\na:not a time").decode()},
            "InvalidParameter",
            "Invalid Parameter continuation token",
        ),
        (
            {"cursor": base64.b64encode(b"l:a\x00b").decode()},
            "InvalidParameter",
            "Invalid Parameter continuation token",
        ),
    ],
)
async def test_bad_list_v2_bodies_are_refused_as_storage_refuses_them(
    storage_server: StorageServer,
    users: tuple[uuid.UUID, uuid.UUID],
    http: httpx.AsyncClient,
    body: dict[str, Any],
    code: str,
    message: str,
) -> None:
    alice, _ = users
    response = await http.post(
        f"{storage_server.storage_url}/object/list-v2/{BUCKET}",
        json=body,
        headers={"authorization": f"Bearer {user_token(alice)}"},
    )
    assert assert_envelope(response, "400", code)["message"] == message
    async with storage_server.client(user_token(alice)) as client:
        with pytest.raises(StorageApiError) as refused:
            await client.from_(BUCKET).list_v2(body)
        assert (refused.value.status, refused.value.code) == ("400", code)
