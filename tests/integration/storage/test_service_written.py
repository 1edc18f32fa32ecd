"""Files voicegate writes (cleaned samples, renders, previews, voice manifests) are the service's alone: their
owner reads them but cannot replace, delete, move or copy onto or from them through `/storage/v1`, each
refusal in Storage's own words, and the file is unchanged afterwards. Move and copy work as Storage's
for whoever the policies let do them (here, the service)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from backend.storage.client import SupabaseObjectStorage
from standins.storage.rules import file_etag
from tests.integration.storage.conftest import SERVICE_KEY, StorageServer, user_token

SAMPLES = "voice-samples"
WAV = "audio/wav"
ACCESS_DENIED = ("403", "AccessDenied")
NOT_FOUND = ("404", "NoSuchKey")


@dataclass(frozen=True)
class Kind:
    """One kind of file the service writes: its bucket, its name under the owner's folder, its type."""

    bucket: str
    name: str
    content_type: str


KINDS = {
    "processed-sample": Kind(SAMPLES, "samples/{id}/processed.wav", WAV),
    "render": Kind("voice-renders", "renders/{id}.wav", WAV),
    "preview": Kind("voice-previews", "{id}/preview.wav", WAV),
    "manifest": Kind("voice-metadata", "{id}.json", "application/json"),
}


@dataclass(frozen=True)
class Written:
    """A service-written file in Alice's folder, and her sample's original beside it."""

    bucket: str
    path: str
    content_type: str
    data: bytes
    original: str


def envelope(response: httpx.Response) -> tuple[str, str]:
    """The logical status and code of a Storage error (HTTP 400, as Storage answers all but 500s)."""
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"statusCode", "error", "message", "code"}
    return body["statusCode"], body["code"]


async def write_as_service(storage_server: StorageServer, owner: uuid.UUID, kind: Kind) -> Written:
    """The file written as voicegate writes it (the service key), and the original its owner uploaded
    through an upload URL the service signed, as `POST /api/clone/upload-url` hands one out."""
    path = f"{owner}/{kind.name.format(id=uuid.uuid4())}"
    data = b"voicegate wrote this " + path.encode()
    original = f"{owner}/samples/{uuid.uuid4()}/original"
    async with SupabaseObjectStorage(storage_server.storage_url, SERVICE_KEY) as storage, httpx.AsyncClient() as http:
        await storage.upload(kind.bucket, path, data, kind.content_type, upsert=True)
        signed = await storage.create_signed_upload_url(SAMPLES, original)
        uploaded = await http.put(signed.url, content=b"my own voice", headers={"content-type": WAV})
        assert uploaded.status_code == 200, uploaded.text
    return Written(kind.bucket, path, kind.content_type, data, original)


def attempts(written: Written, owner: uuid.UUID) -> list[tuple[str, str, dict[str, Any], tuple[str, str] | None]]:
    """Every way through `/storage/v1` to change the file, or to copy it away: (method, path, request
    arguments, the logical status and code Storage answers; None for its 200 with nothing deleted)."""
    bucket, path = written.bucket, written.path
    body = {"content": b"forged", "headers": {"content-type": written.content_type}}
    upsert = {"x-upsert": "true"}
    elsewhere = f"{owner}/elsewhere.wav"
    onto_it = {"bucketId": SAMPLES, "sourceKey": written.original, "destinationBucket": bucket, "destinationKey": path}
    from_it = {"bucketId": bucket, "sourceKey": path, "destinationBucket": SAMPLES, "destinationKey": elsewhere}
    return [
        ("PUT", f"/object/{bucket}/{path}", body, ACCESS_DENIED),
        ("POST", f"/object/{bucket}/{path}", body, ACCESS_DENIED),
        ("POST", f"/object/{bucket}/{path}", {**body, "headers": {**body["headers"], **upsert}}, ACCESS_DENIED),
        ("POST", f"/object/upload/sign/{bucket}/{path}", {}, ACCESS_DENIED),
        ("POST", f"/object/upload/sign/{bucket}/{path}", {"headers": upsert}, ACCESS_DENIED),
        ("DELETE", f"/object/{bucket}/{path}", {}, ACCESS_DENIED),
        ("DELETE", f"/object/{bucket}", {"json": {"prefixes": [path]}}, None),
        # Storage renames as the caller first; a row their UPDATE policy does not admit is not found.
        ("POST", "/object/move", {"json": from_it}, NOT_FOUND),
        (
            "POST",
            "/object/move",
            {"json": {**from_it, "destinationBucket": bucket, "destinationKey": elsewhere}},
            NOT_FOUND,
        ),
        ("POST", "/object/move", {"json": onto_it}, NOT_FOUND),
        # A copy is an upload of the destination as the caller (their INSERT policy).
        ("POST", "/object/copy", {"json": from_it}, ACCESS_DENIED),
        ("POST", "/object/copy", {"json": onto_it}, ACCESS_DENIED),
        ("POST", "/object/copy", {"json": onto_it, "headers": upsert}, ACCESS_DENIED),
        ("POST", "/object/copy", {"json": {**onto_it, "sourceKey": elsewhere}}, NOT_FOUND),
    ]


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
async def test_the_owner_can_read_a_service_written_file_and_nothing_else(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient, kind: Kind
) -> None:
    alice, _ = users
    written = await write_as_service(storage_server, alice, kind)
    rows_before = [storage_server.row(written.bucket, written.path), storage_server.row(SAMPLES, written.original)]
    files_before = storage_server.files()
    headers = {"Authorization": f"Bearer {user_token(alice)}"}

    for method, path, arguments, refusal in attempts(written, alice):
        extra = arguments.get("headers", {})
        response = await http.request(
            method,
            storage_server.storage_url + path,
            **{**arguments, "headers": {**headers, **extra}},
        )
        if refusal is None:
            assert (response.status_code, response.json()) == (200, []), (method, path)
        else:
            assert envelope(response) == refusal, (method, path, arguments)

    assert [storage_server.row(written.bucket, written.path), storage_server.row(SAMPLES, written.original)] == (
        rows_before
    )
    assert storage_server.files() == files_before
    assert (storage_server.root / written.bucket / written.path).read_bytes() == written.data
    # What the owner may do: read it, directly or through a URL of their own signing.
    read = await http.get(
        f"{storage_server.storage_url}/object/authenticated/{written.bucket}/{written.path}", headers=headers
    )
    assert (read.status_code, read.content) == (200, written.data)
    signed = await http.post(
        f"{storage_server.storage_url}/object/sign/{written.bucket}/{written.path}",
        json={"expiresIn": 60},
        headers=headers,
    )
    assert signed.status_code == 200, signed.text
    assert (await http.get(storage_server.storage_url + signed.json()["signedURL"])).content == written.data


async def test_move_and_copy_work_as_storages_for_whom_the_policies_let(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    alice, _ = users
    written = await write_as_service(storage_server, alice, KINDS["render"])
    base, service = storage_server.storage_url, {"Authorization": f"Bearer {SERVICE_KEY}"}
    copy, moved = f"{alice}/copy.wav", f"{alice}/moved.wav"
    source = storage_server.row(written.bucket, written.path)
    assert source is not None

    copied = await http.post(
        f"{base}/object/copy",
        json={"bucketId": written.bucket, "sourceKey": written.path, "destinationKey": copy},
        headers=service,
    )
    assert copied.status_code == 200, copied.text
    copy_row = storage_server.row(written.bucket, copy)
    assert copy_row is not None
    assert copied.json() == {"Id": str(copy_row["id"]), "Key": f"{written.bucket}/{copy}"}
    assert copy_row["id"] != source["id"]
    assert {k: copy_row["metadata"][k] for k in ("size", "mimetype")} == {
        k: source["metadata"][k] for k in ("size", "mimetype")
    }
    copied_file = storage_server.root / written.bucket / copy
    assert copied_file.read_bytes() == written.data
    # A file of its own, with an ETag of its own (the file backend's `mtime` ETag, of the copy).
    assert copy_row["metadata"]["eTag"] == file_etag(copied_file.stat()) != source["metadata"]["eTag"]

    # Onto an existing object only with x-upsert, as an upload.
    again = {
        "bucketId": SAMPLES,
        "sourceKey": written.original,
        "destinationBucket": written.bucket,
        "destinationKey": copy,
    }
    assert envelope(await http.post(f"{base}/object/copy", json=again, headers=service)) == ("409", "KeyAlreadyExists")
    replaced = await http.post(f"{base}/object/copy", json=again, headers={**service, "x-upsert": "true"})
    assert replaced.status_code == 200, replaced.text
    assert (storage_server.root / written.bucket / copy).read_bytes() == b"my own voice"

    # A move keeps the row (its id), takes the file along, and never lands on an existing object.
    onto = {"bucketId": written.bucket, "sourceKey": copy, "destinationKey": written.path}
    refused = await http.post(f"{base}/object/move", json=onto, headers=service)
    assert envelope(refused) == ("409", "ResourceAlreadyExists")
    assert (storage_server.root / written.bucket / written.path).read_bytes() == written.data
    copy_row = storage_server.row(written.bucket, copy)
    assert copy_row is not None
    response = await http.post(
        f"{base}/object/move",
        json={"bucketId": written.bucket, "sourceKey": copy, "destinationBucket": SAMPLES, "destinationKey": moved},
        headers=service,
    )
    assert response.json() == {"message": "Successfully moved", "Id": str(copy_row["id"]), "Key": moved}
    assert storage_server.row(written.bucket, copy) is None
    moved_row = storage_server.row(SAMPLES, moved)
    assert moved_row is not None
    assert moved_row["id"] == copy_row["id"]
    assert (storage_server.root / SAMPLES / moved).read_bytes() == b"my own voice"
    assert not (storage_server.root / written.bucket / copy).exists()

    gone = {"bucketId": written.bucket, "sourceKey": copy, "destinationKey": f"{alice}/x.wav"}
    assert envelope(await http.post(f"{base}/object/move", json=gone, headers=service)) == NOT_FOUND
    assert envelope(await http.post(f"{base}/object/copy", json={"bucketId": SAMPLES}, headers=service)) == (
        "400",
        "InvalidRequest",
    )
    # The stock client's own calls.
    async with storage_server.client(SERVICE_KEY) as client:
        files = client.from_(SAMPLES)
        assert (await files.copy(moved, f"{alice}/stock-copy.wav"))["Key"] == f"{SAMPLES}/{alice}/stock-copy.wav"
        assert (await files.move(f"{alice}/stock-copy.wav", f"{alice}/stock-moved.wav"))["message"] == (
            "Successfully moved"
        )
        assert await files.download(f"{alice}/stock-moved.wav") == b"my own voice"
