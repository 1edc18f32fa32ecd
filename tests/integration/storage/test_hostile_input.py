"""What an outside tester sent the Storage stand-in and got a 500 for (issue 45), and the existence oracle it
found: a body nested 10,000 deep or not UTF-8, user metadata alike, and a NUL character in any field (path,
bucket, list prefix and search, signed paths, move and copy names, query parameters) are each a 400 in
Storage's envelope that never reaches the database; and a user can never tell someone else's object from a
missing one, on any route, deletes included."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from backend.json_body import MAX_DEPTH
from tests.integration.storage.conftest import SERVICE_KEY, StorageServer, user_token
from tests.integration.storage.test_access import BUCKET, assert_envelope, bearer, put_object

TOO_DEEP = f"the body nests objects and arrays more than {MAX_DEPTH} deep"
HOSTILE: dict[str, tuple[bytes, str]] = {
    "10,000 deep": (b'{"prefix": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", TOO_DEEP),
    "10,000 deep, unclosed": (b"[" * 10_000, TOO_DEEP),
    "invalid UTF-8": (b'{"prefix": "\xff"}', "the body is not UTF-8 text (byte 12 is not part of a character)"),
}
NUL_MESSAGE = "must not contain a NUL character (U+0000)"


def json_routes(alice: uuid.UUID) -> list[tuple[str, str]]:
    """Every stand-in route that reads a JSON body (Storage's: sign one or many, delete many, move, copy, list)."""
    return [
        ("POST", f"/object/sign/{BUCKET}/{alice}/x.wav"),
        ("POST", f"/object/sign/{BUCKET}"),
        ("DELETE", f"/object/{BUCKET}"),
        ("POST", "/object/move"),
        ("POST", "/object/copy"),
        ("POST", f"/object/list/{BUCKET}"),
    ]


def object_count(storage_server: StorageServer) -> int:
    with psycopg.connect(storage_server.dsn) as conn:
        row = conn.execute("select count(*) from storage.objects").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
async def test_a_hostile_json_body_is_an_invalid_request_on_every_route_that_reads_one(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient, hostile: str
) -> None:
    alice, _ = users
    body, detail = HOSTILE[hostile]
    for token in (user_token(alice), SERVICE_KEY):
        for method, route in json_routes(alice):
            response = await http.request(
                method,
                storage_server.storage_url + route,
                content=body,
                headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
            )
            assert assert_envelope(response, "400", "InvalidRequest")["message"] == detail, (method, route)
    assert object_count(storage_server) == 0


@pytest.mark.parametrize("hostile", list(HOSTILE), ids=list(HOSTILE))
async def test_hostile_user_metadata_is_an_invalid_request(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient, hostile: str
) -> None:
    """User metadata is JSON too: base64 in `x-metadata` beside a raw body, a `metadata` field in a form."""
    alice, _ = users
    metadata, _ = HOSTILE[hostile]
    url = f"{storage_server.storage_url}/object/{BUCKET}/{alice}/x.wav"
    service = {"Authorization": f"Bearer {SERVICE_KEY}"}

    raw = await http.post(
        url,
        content=b"RIFF",
        headers={**service, "content-type": "audio/wav", "x-metadata": base64.b64encode(metadata).decode()},
    )
    form = await http.post(
        url, files={"file": ("x.wav", b"RIFF", "audio/wav"), "metadata": (None, metadata)}, headers=service
    )

    assert assert_envelope(raw, "400", "InvalidRequest")["message"] == "x-metadata must be base64 of a JSON object"
    assert assert_envelope(form, "400", "InvalidRequest")["message"] == "metadata must be a JSON object"
    assert storage_server.row(BUCKET, f"{alice}/x.wav") is None
    assert storage_server.files() == []


def nul_fields(alice: uuid.UUID) -> list[tuple[str, str, str, dict[str, Any], tuple[str, str]]]:
    """(field, method, route, request arguments, the refusal's code and message start) for a NUL in each field."""
    key = f"{alice}/x.wav"
    nul_key = f"{alice}/x%00y.wav"  # the path is percent-decoded: the route sees a NUL
    invalid_key = ("InvalidKey", "Invalid key: ")

    def body(field: str) -> tuple[str, str]:
        return ("InvalidRequest", f"body/{field} {NUL_MESSAGE}")

    def query(name: str) -> tuple[str, str]:
        return ("InvalidRequest", f"querystring/{name} {NUL_MESSAGE}")

    move = {"bucketId": BUCKET, "sourceKey": key, "destinationKey": f"{alice}/y.wav"}
    return [
        ("list bucket", "POST", "/object/list/voice%00samples", {"json": {"prefix": ""}}, invalid_key),
        ("list prefix", "POST", f"/object/list/{BUCKET}", {"json": {"prefix": f"{alice}\0"}}, body("prefix")),
        ("list search", "POST", f"/object/list/{BUCKET}", {"json": {"prefix": "", "search": "a\0"}}, body("search")),
        (
            "list property name",
            "POST",
            f"/object/list/{BUCKET}",
            {"json": {"prefix": "", "a\0b": 1}},
            ("InvalidRequest", f"body/a\\u0000b {NUL_MESSAGE}"),
        ),
        ("sign bucket", "POST", f"/object/sign/voice%00samples/{key}", {"json": {"expiresIn": 60}}, invalid_key),
        ("sign path", "POST", f"/object/sign/{BUCKET}/{nul_key}", {"json": {"expiresIn": 60}}, invalid_key),
        (
            "sign many bucket",
            "POST",
            "/object/sign/voice%00samples",
            {"json": {"expiresIn": 60, "paths": [key]}},
            invalid_key,
        ),
        (
            "sign many paths",
            "POST",
            f"/object/sign/{BUCKET}",
            {"json": {"expiresIn": 60, "paths": [key, "a\0"]}},
            body("paths/1"),
        ),
        ("upload sign path", "POST", f"/object/upload/sign/{BUCKET}/{nul_key}", {}, invalid_key),
        ("upload path", "POST", f"/object/{BUCKET}/{nul_key}", {"content": b"RIFF"}, invalid_key),
        ("download bucket", "GET", f"/object/voice%00samples/{key}", {}, invalid_key),
        ("download path", "GET", f"/object/authenticated/{BUCKET}/{nul_key}", {}, invalid_key),
        ("download name", "GET", f"/object/{BUCKET}/{key}", {"params": {"download": "a\0"}}, query("download")),
        ("info path", "GET", f"/object/info/{BUCKET}/{nul_key}", {}, invalid_key),
        ("public path", "GET", f"/object/public/{BUCKET}/{nul_key}", {}, invalid_key),
        ("signed download token", "GET", f"/object/sign/{BUCKET}/{key}", {"params": {"token": "a\0"}}, query("token")),
        ("delete bucket", "DELETE", f"/object/voice%00samples/{key}", {}, invalid_key),
        ("delete path", "DELETE", f"/object/{BUCKET}/{nul_key}", {}, invalid_key),
        ("delete many bucket", "DELETE", "/object/voice%00samples", {"json": {"prefixes": [key]}}, invalid_key),
        ("delete many prefixes", "DELETE", f"/object/{BUCKET}", {"json": {"prefixes": ["a\0"]}}, body("prefixes/0")),
        *(
            (f"move {field}", "POST", "/object/move", {"json": {**move, field: "a\0"}}, body(field))
            for field in ("bucketId", "sourceKey", "destinationKey", "destinationBucket")
        ),
        *(
            (f"copy {field}", "POST", "/object/copy", {"json": {**move, field: "a\0"}}, body(field))
            for field in ("bucketId", "sourceKey", "destinationKey", "destinationBucket")
        ),
        ("bucket id", "GET", "/bucket/voice%00samples", {}, invalid_key),
        ("buckets search", "GET", "/bucket", {"params": {"search": "voice\0"}}, query("search")),
        ("buckets sort column", "GET", "/bucket", {"params": {"sortColumn": "name\0"}}, query("sortColumn")),
        ("buckets limit", "GET", "/bucket", {"params": {"limit": "1\0"}}, query("limit")),
    ]


NUL_FIELDS = nul_fields(uuid.UUID(int=0))


@pytest.mark.parametrize("case", range(len(NUL_FIELDS)), ids=[field[0] for field in NUL_FIELDS])
async def test_a_nul_in_any_field_is_refused_in_storages_envelope_before_the_database(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient, case: int
) -> None:
    alice, _ = users
    await put_object(storage_server, f"{alice}/x.wav")
    field, method, route, arguments, (code, message) = nul_fields(alice)[case]
    before = object_count(storage_server), storage_server.files()

    for headers in (bearer(alice), {"Authorization": f"Bearer {SERVICE_KEY}"}):
        response = await http.request(method, storage_server.storage_url + route, headers=headers, **arguments)

        refused = assert_envelope(response, "400", code)
        assert refused["message"].startswith(message), (field, refused)
    assert (object_count(storage_server), storage_server.files()) == before


def oracle_requests(bob: uuid.UUID, target: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every way Bob's token can name the object at `target` (in Alice's folder)."""
    mine = f"{bob}/mine.wav"
    upsert = {"x-upsert": "true"}
    raw = {"content": b"RIFF", "headers": {"content-type": "audio/wav"}}
    return [
        ("GET", f"/object/{BUCKET}/{target}", {}),
        ("GET", f"/object/authenticated/{BUCKET}/{target}", {}),
        ("HEAD", f"/object/{BUCKET}/{target}", {}),
        ("GET", f"/object/info/{BUCKET}/{target}", {}),
        ("GET", f"/object/info/authenticated/{BUCKET}/{target}", {}),
        ("GET", f"/object/public/{BUCKET}/{target}", {}),
        ("POST", f"/object/sign/{BUCKET}/{target}", {"json": {"expiresIn": 60}}),
        ("POST", f"/object/sign/{BUCKET}", {"json": {"expiresIn": 60, "paths": [target]}}),
        ("POST", f"/object/upload/sign/{BUCKET}/{target}", {}),
        ("POST", f"/object/upload/sign/{BUCKET}/{target}", {"headers": upsert}),
        ("POST", f"/object/{BUCKET}/{target}", raw),
        ("POST", f"/object/{BUCKET}/{target}", {**raw, "headers": {**raw["headers"], **upsert}}),
        ("PUT", f"/object/{BUCKET}/{target}", raw),
        ("DELETE", f"/object/{BUCKET}/{target}", {}),
        ("DELETE", f"/object/{BUCKET}", {"json": {"prefixes": [target]}}),
        ("POST", "/object/move", {"json": {"bucketId": BUCKET, "sourceKey": target, "destinationKey": f"{bob}/m.wav"}}),
        ("POST", "/object/move", {"json": {"bucketId": BUCKET, "sourceKey": mine, "destinationKey": target}}),
        ("POST", "/object/copy", {"json": {"bucketId": BUCKET, "sourceKey": target, "destinationKey": f"{bob}/c.wav"}}),
        ("POST", "/object/copy", {"json": {"bucketId": BUCKET, "sourceKey": mine, "destinationKey": target}}),
        (
            "POST",
            "/object/copy",
            {"json": {"bucketId": BUCKET, "sourceKey": mine, "destinationKey": target}, "headers": upsert},
        ),
        ("POST", f"/object/list/{BUCKET}", {"json": {"prefix": target.rpartition("/")[0], "search": "priv"}}),
    ]


async def test_someone_elses_object_is_answered_as_a_missing_one_on_every_route(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    """Bob asks for Alice's object and for a name in her folder that holds none: the answers are the same, status
    and body (the name itself aside), single and batch delete included, and nothing changes."""
    alice, bob = users
    existing, missing = f"{alice}/private.wav", f"{alice}/private-none.wav"
    await put_object(storage_server, existing)
    await put_object(storage_server, f"{bob}/mine.wav")
    before = object_count(storage_server), storage_server.files()
    told_apart = []

    for (method, route, arguments), (_, other_route, other_arguments) in zip(
        oracle_requests(bob, existing), oracle_requests(bob, missing), strict=True
    ):
        extra = arguments.pop("headers", {})
        answer = await http.request(
            method, storage_server.storage_url + route, headers={**bearer(bob), **extra}, **arguments
        )
        other_arguments.pop("headers", None)
        other = await http.request(
            method, storage_server.storage_url + other_route, headers={**bearer(bob), **extra}, **other_arguments
        )
        if seen(answer, existing) != seen(other, missing):
            told_apart.append((method, route, seen(answer, existing), seen(other, missing)))

    assert told_apart == []
    assert (object_count(storage_server), storage_server.files()) == before


def seen(response: httpx.Response, name: str) -> tuple[int, str]:
    """What the caller sees of an answer, the name it was asked about replaced."""
    return response.status_code, response.text.replace(name, "<name>")


async def test_deleting_someone_elses_object_is_no_such_key_as_for_a_missing_one(
    storage_server: StorageServer, users: tuple[uuid.UUID, uuid.UUID], http: httpx.AsyncClient
) -> None:
    """The oracle issue 45 found: Storage looks the object up as superuser before it deletes as the caller
    (403 AccessDenied for an existing object, 404 NoSuchKey for a missing one). The stand-in looks it up as
    the caller. The owner, who can see the object, is still told she may not delete it."""
    alice, bob = users
    path = f"{alice}/private.wav"
    await put_object(storage_server, path)
    base = f"{storage_server.storage_url}/object/{BUCKET}"

    theirs = await http.delete(f"{base}/{path}", headers=bearer(bob))
    missing = await http.delete(f"{base}/{alice}/no-such.wav", headers=bearer(bob))
    own = await http.delete(f"{base}/{path}", headers=bearer(alice))

    assert assert_envelope(theirs, "404", "NoSuchKey") == assert_envelope(missing, "404", "NoSuchKey")
    assert assert_envelope(own, "403", "AccessDenied")["message"] == "Access denied"
    assert storage_server.files() == [f"{BUCKET}/{path}"]
