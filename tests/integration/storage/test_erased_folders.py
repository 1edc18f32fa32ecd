"""The erasure's fence in Storage: once a user's auth.users row is deleted, nothing more is stored in their folder of
any bucket, however it would come (a URL signed before, the service's own upload, a move into it, a row written in
SQL), and a download URL signed before is refused; another user's folder is as it was. Refused in the transaction
that would write the row, so neither the row nor the file is left, and in Storage's envelope (its logical 403)."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from storage3.exceptions import StorageApiError

from tests.integration.storage.conftest import SERVICE_KEY, StorageServer
from tests.integration.storage.test_access import BUCKET, WAV, assert_envelope, put_object

ERASED = "The user whose folder this is has been erased"


async def test_nothing_more_is_stored_in_an_erased_users_folder_nor_read_through_a_url_signed_before(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, bob = users
    await put_object(storage_server, f"{alice}/kept.wav")
    await put_object(storage_server, f"{bob}/before.wav")
    async with storage_server.client(SERVICE_KEY) as client:
        files = client.from_(BUCKET)
        upload = await files.create_signed_upload_url(f"{alice}/late.wav")
        download = (await files.create_signed_url(f"{alice}/kept.wav", 600))["signedURL"]
    with psycopg.connect(storage_server.dsn, autocommit=True) as conn:
        conn.execute("delete from auth.users where id = %s", (alice,))

    late = await http.put(
        f"{storage_server.storage_url}/object/upload/sign/{BUCKET}/{alice}/late.wav?token={upload['token']}",
        content=b"voice",
        headers=WAV,
    )
    assert assert_envelope(late, "403", "AccessDenied")["message"].startswith(ERASED)
    read = await http.get(download if download.startswith("http") else storage_server.storage_url + download)
    assert assert_envelope(read, "403", "AccessDenied")["message"].startswith(ERASED)
    async with storage_server.client(SERVICE_KEY) as client:
        files = client.from_(BUCKET)
        with pytest.raises(StorageApiError) as stored:
            await files.upload(f"{alice}/service.wav", b"voice", {"content-type": "audio/wav"})
        assert stored.value.status == "403"
        with pytest.raises(StorageApiError) as moved:
            await files.move(f"{bob}/before.wav", f"{alice}/moved.wav")
        assert moved.value.status == "403"
        # The user who is not erased goes on as before.
        await files.upload(f"{bob}/after.wav", b"voice", {"content-type": "audio/wav"})
    with psycopg.connect(storage_server.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=ERASED):
            conn.execute(
                "insert into storage.objects (bucket_id, name) values (%s, %s)", (BUCKET, f"{alice}/by-hand.wav")
            )
        names = {row[0] for row in conn.execute("select name from storage.objects where bucket_id = %s", (BUCKET,))}
    assert names == {f"{alice}/kept.wav", f"{bob}/before.wav", f"{bob}/after.wav"}
    assert [name for name in storage_server.files() if str(alice) in name] == [f"{BUCKET}/{alice}/kept.wav"]
