"""The Supabase clients people already use, against a real `voicegate up`: the `supabase` Python client
(storage3) and supabase-js from npm on Node, made with the URL and the anon key `/config.json` serves, acting
as a signed-in user. What they call is Supabase Storage's API as supabase/storage serves it (commit 4fa61fba):
`POST /object/list/{bucket}` and `/object/list-v2/{bucket}` (src/http/routes/object/listObjects.ts,
listObjectsV2.ts), `POST /object/sign/{bucket}` (getSignedURLs.ts), `GET /object/info/...` and `HEAD /object/...`
(getObjectInfo.ts), the bucket routes (src/http/routes/bucket/), `POST /object/move` and `/object/copy`
(moveObject.ts, copyObject.ts) and `GET /object/public/{bucket}/*` (getPublicObject.ts), under the RLS of
voicegate's buckets: owners read their own folder, and only the service writes there
(supabase/migrations/20261123103504_service_written_objects.sql)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError

from backend.providers.base import STREAM_SAMPLE_RATE
from devkit.up import REPO, Running, dev_token, running_up
from standins.dev_keys import load_or_create_jwt_secret
from standins.dev_tokens import mint_service_key
from supabase import Client, ClientOptions, create_client
from tests.conftest import server_dir

pytestmark = pytest.mark.timeout(300)

BUCKET = "voice-samples"
SAMPLE = REPO / "docs" / "quickstart-sample.wav"
JS_DIR = REPO / "tests" / "e2e" / "js"


@pytest.fixture(scope="module")
def up() -> Iterator[Running]:
    """One `voicegate up` for the module."""
    with server_dir("e2e-clients") as root, running_up(root) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """The HTTP client the Supabase clients of a module share (supabase-py's own would be made with a
    `timeout` argument storage3 deprecates)."""
    with httpx.Client(timeout=30) as session:
        yield session


@dataclass(frozen=True)
class Person:
    """A signed-in user: their id and access token."""

    id: str
    token: str


def person(up: Running) -> Person:
    """A new user, signed in with `voicegate token`."""
    token = dev_token(up, f"{uuid.uuid4().hex[:12]}@clients.test")
    return Person(jwt.decode(token, options={"verify_signature": False})["sub"], token)


def anon_key(up: Running) -> str:
    """The anon key as an app finds it: in `/config.json`."""
    key = httpx.get(f"{up.base_url}/config.json").raise_for_status().json()["anonKey"]
    assert isinstance(key, str)
    return key


def client(up: Running, http: httpx.Client, token: str | None = None) -> Client:
    """`create_client(url, anon key)`, acting as the user whose access token is `token` (None: anon)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return create_client(up.base_url, anon_key(up), options=ClientOptions(headers=headers, httpx_client=http))


def service(up: Running, http: httpx.Client) -> Client:
    """The client with the project's service key (what voicegate itself acts as)."""
    secret = load_or_create_jwt_secret(up.pg.data_dir.parent)
    return create_client(up.base_url, mint_service_key(secret), options=ClientOptions(httpx_client=http))


def upload_ticket(up: Running, owner: Person) -> dict[str, Any]:
    """What `/api/clone/upload-url` answers `owner` for a new consented voice: where to upload its sample."""
    response = httpx.post(
        f"{up.base_url}/api/clone/upload-url",
        headers={"Authorization": f"Bearer {owner.token}"},
        json={"name": "Client test", "consent": True},
    )
    ticket: dict[str, Any] = response.raise_for_status().json()
    return ticket


def uploaded_sample(up: Running, http: httpx.Client, owner: Person) -> str:
    """A sample `owner` uploaded as the API says: a ticket from `/api/clone/upload-url`, its bytes sent with
    storage3's `upload_to_signed_url` under a content type the ticket names; its object path."""
    body = upload_ticket(up, owner)
    assert "audio/wav" in body["content_types"]
    files = client(up, http, owner.token).storage.from_(BUCKET)
    files.upload_to_signed_url(body["path"], body["token"], SAMPLE.read_bytes(), {"content-type": "audio/wav"})
    path: str = body["path"]
    return path


def folder_of(path: str) -> str:
    return path.rsplit("/", 1)[0]


def test_a_user_lists_their_own_folder_and_another_users_is_empty(up: Running, http: httpx.Client) -> None:
    alice, bob = person(up), person(up)
    path = uploaded_sample(up, http, alice)
    voice_folder = folder_of(path)

    files = client(up, http, alice.token).storage.from_(BUCKET)
    # The user's folder holds one folder per voice (no id: a folder is not an object), that one the file.
    assert [(e["name"], e["id"]) for e in files.list(alice.id)] == [(voice_folder.split("/")[1], None)]
    [entry] = files.list(voice_folder)
    assert entry["name"] == "original"
    assert entry["metadata"]["size"] == SAMPLE.stat().st_size
    assert entry["metadata"]["mimetype"] == "audio/wav"
    assert files.list(voice_folder, {"search": "orig", "limit": 1}) == [entry]
    assert files.list(voice_folder, {"search": "other"}) == []
    assert files.list(voice_folder, {"offset": 1}) == []

    theirs = client(up, http, bob.token).storage.from_(BUCKET)
    assert theirs.list(alice.id) == []
    assert theirs.list(voice_folder) == []
    assert theirs.list(bob.id) == []
    assert client(up, http).storage.from_(BUCKET).list(voice_folder) == []  # the anon key alone sees nothing


def test_create_signed_urls_signs_what_the_user_can_see(up: Running, http: httpx.Client) -> None:
    alice, bob = person(up), person(up)
    mine, theirs = uploaded_sample(up, http, alice), uploaded_sample(up, http, bob)

    signed = (
        client(up, http, alice.token).storage.from_(BUCKET).create_signed_urls([mine, theirs, f"{alice.id}/none"], 60)
    )

    assert [s["path"] for s in signed] == [mine, theirs, f"{alice.id}/none"]
    refused = "Either the object does not exist or you do not have access to it"
    assert [s["error"] for s in signed] == [None, refused, refused]
    assert signed[1]["signedURL"] is None
    assert signed[2]["signedURL"] is None
    url = signed[0]["signedURL"]
    assert url is not None
    assert url.startswith(f"{up.base_url}/storage/v1/object/sign/{BUCKET}/{mine}?token=")
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == SAMPLE.read_bytes()


def test_buckets_are_read_under_rls(up: Running, http: httpx.Client) -> None:
    user = client(up, http, person(up).token).storage
    # storage.buckets has RLS and voicegate gives users no policy on it, as on a Supabase project.
    assert user.list_buckets() == []
    with pytest.raises(StorageApiError) as refused:
        user.get_bucket(BUCKET)
    assert (str(refused.value.status), refused.value.message) == ("404", "Bucket not found")

    admin = service(up, http).storage
    buckets = {bucket.id: bucket for bucket in admin.list_buckets()}
    assert set(buckets) == {"voice-samples", "voice-previews", "voice-renders", "voice-metadata"}
    assert buckets[BUCKET].type == "STANDARD"
    samples = admin.get_bucket(BUCKET)
    assert (samples.name, samples.public, samples.owner) == (BUCKET, False, "")
    assert samples.file_size_limit == 25 * 1024 * 1024
    assert samples.allowed_mime_types is not None
    assert "audio/wav" in samples.allowed_mime_types


def test_move_and_copy_keep_the_service_written_rule(up: Running, http: httpx.Client) -> None:
    alice = person(up)
    path = uploaded_sample(up, http, alice)
    folder = folder_of(path)
    files = client(up, http, alice.token).storage.from_(BUCKET)

    # Owners read their folder; they cannot rename (their UPDATE policy refuses it: not found, as Storage's
    # `updateObject` says) or copy into it (their INSERT policy refuses it: row-level security).
    with pytest.raises(StorageApiError) as moved:
        files.move(path, f"{folder}/renamed")
    assert (str(moved.value.status), moved.value.message) == ("404", "Object not found")
    with pytest.raises(StorageApiError) as copied:
        files.copy(path, f"{folder}/copy")
    assert (str(copied.value.status), copied.value.message) == ("403", "new row violates row-level security policy")
    assert [e["name"] for e in files.list(folder)] == ["original"]

    # The service may do both; the owner sees the result.
    admin = service(up, http).storage.from_(BUCKET)
    assert admin.copy(path, f"{folder}/copy")["Key"] == f"{BUCKET}/{folder}/copy"
    assert admin.move(f"{folder}/copy", f"{folder}/renamed")["message"] == "Successfully moved"
    assert [e["name"] for e in files.list(folder)] == ["original", "renamed"]
    assert files.download(f"{folder}/renamed") == SAMPLE.read_bytes()


def test_the_public_url_of_a_private_bucket_is_bucket_not_found(up: Running, http: httpx.Client) -> None:
    alice = person(up)
    path = uploaded_sample(up, http, alice)
    url = client(up, http, alice.token).storage.from_(BUCKET).get_public_url(path)
    assert url == f"{up.base_url}/storage/v1/object/public/{BUCKET}/{path}"

    response = httpx.get(url)
    # Storage's public route looks the bucket up with `public = true` and answers NoSuchBucket, in its
    # legacy HTTP 400 with the logical status in the body.
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": "404",
        "error": "Bucket not found",
        "message": "Bucket not found",
        "code": "NoSuchBucket",
    }


def test_storage3_parses_every_error_and_refuses_its_default_content_type(up: Running, http: httpx.Client) -> None:
    alice = person(up)
    body = upload_ticket(up, alice)
    files = client(up, http, alice.token).storage.from_(BUCKET)
    # storage3 sends `text/plain;charset=UTF-8` unless told otherwise (a multipart file part of type
    # `text/plain`): the ticket's content types say what to send instead.
    with pytest.raises(StorageApiError) as refused:
        files.upload_to_signed_url(body["path"], body["token"], SAMPLE.read_bytes())
    assert str(refused.value.status) == "415"
    assert refused.value.message == "mime type text/plain is not supported"
    assert "text/plain" not in body["content_types"]

    with pytest.raises(StorageApiError) as missing:
        files.download(f"{alice.id}/nothing-here.wav")
    assert (str(missing.value.status), missing.value.code, missing.value.message) == (
        "404",
        "not_found",
        "Object not found",
    )


def ensure_js_packages() -> None:
    """tests/e2e/js's packages, installed from the lock when missing (at once when present)."""
    subprocess.run(["bash", str(REPO / ".ci" / "ensure-js-packages")], check=True, timeout=240)


def run_node(script: str, payload: dict[str, Any]) -> dict[str, Any]:
    """`node script` in tests/e2e/js (its packages installed first, when missing), fed `payload` as JSON;
    what it printed, as JSON."""
    ensure_js_packages()
    ran = subprocess.run(
        ["node", script], cwd=JS_DIR, input=json.dumps(payload).encode(), capture_output=True, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr.decode()
    answer: dict[str, Any] = json.loads(ran.stdout)
    return answer


def test_supabase_js_uploads_lists_signs_and_downloads_as_the_user(up: Running, http: httpx.Client) -> None:
    alice, bob = person(up), person(up)
    theirs = uploaded_sample(up, http, bob)
    body = upload_ticket(up, alice)

    said = run_node(
        "storage_flow.mjs",
        {
            "url": up.base_url,
            "anonKey": anon_key(up),
            "userToken": alice.token,
            "bucket": BUCKET,
            "path": body["path"],
            "uploadToken": body["token"],
            "contentType": body["content_types"][0],
            "file": str(SAMPLE),
            "folder": folder_of(body["path"]),
            "othersFolder": folder_of(theirs),
            "othersPath": theirs,
        },
    )

    digest = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert said["upload"] == {"data": {"path": body["path"], "fullPath": f"{BUCKET}/{body['path']}"}, "error": None}
    assert said["list"] == {"names": ["original"], "error": None}
    assert said["othersList"] == {"names": [], "error": None}
    assert said["signed"] == {
        "data": [
            {"path": body["path"], "error": None, "signed": True},
            {
                "path": theirs,
                "error": "Either the object does not exist or you do not have access to it",
                "signed": False,
            },
        ],
        "error": None,
    }
    assert said["download"] == {"sha256": digest, "error": None}
    assert said["signedDownload"] == {"status": 200, "sha256": digest}


def test_an_unknown_storage_route_is_storages_not_found(up: Running, http: httpx.Client) -> None:
    """Storage's not-found handler (src/http/not-found-handler.ts): a real 404 in its envelope, for an unknown
    path and for a known path with another method (Fastify has no 405)."""
    for method, path in (
        ("GET", "/storage/v1/nowhere?x=1"),
        ("GET", "/storage/v1/object/move"),
        ("PATCH", f"/storage/v1/bucket/{BUCKET}"),
    ):
        response = http.request(method, f"{up.base_url}{path}")
        assert response.status_code == 404
        assert response.json() == {
            "statusCode": "404",
            "error": "Not Found",
            "message": f"Route {method}:{path.removeprefix('/storage/v1')} not found",
            "code": "InvalidRequest",
        }
    # Outside /storage/v1 the API's own problem+json is unchanged.
    assert http.get(f"{up.base_url}/nowhere").headers["content-type"] == "application/problem+json"


def documented_block(marker: str, language: str) -> str:
    """The code block of the clients' page (docs/api/clients.md, moved there from the README) that follows
    `<!-- marker -->`."""
    page = REPO / "docs" / "api" / "clients.md"
    match = re.search(rf"<!-- {marker} -->\n```{language}\n(.*?)```", page.read_text(), re.S)
    assert match is not None, f"docs/api/clients.md has no {marker} block"
    return match[1]


def test_the_documented_clients_run_as_written(up: Running, http: httpx.Client, tmp_path: Path) -> None:
    """The clients page's supabase-py and supabase-js scripts, run as it says (`TOKEN` from `voicegate token`, the
    sample as their argument, from the voicegate directory), as written: `API` names this server's port."""
    ensure_js_packages()
    scripts = tmp_path / "clients"
    scripts.mkdir()
    # Where `npm install @supabase/supabase-js ws` was run: these packages, from the lock.
    (scripts / "node_modules").symlink_to(JS_DIR / "node_modules")
    for name, marker, language in (("client.py", "client-py", "python"), ("client.mjs", "client-js", "js")):
        (scripts / name).write_text(documented_block(marker, language))
    env = {**os.environ, "TOKEN": dev_token(up, "you@voicegate.local"), "API": up.base_url}
    sample = SAMPLE.relative_to(REPO)
    for command in ([sys.executable, str(scripts / "client.py")], ["node", str(scripts / "client.mjs")]):
        spoken = tmp_path / f"{Path(command[1]).stem}.wav"
        ran = subprocess.run(
            [*command, str(sample), str(spoken)], cwd=REPO, env=env, capture_output=True, timeout=200, check=False
        )
        assert ran.returncode == 0, ran.stderr.decode()
        listed, url, written = ran.stdout.decode().strip().splitlines()
        assert listed.replace(" ", "") == "['original']", listed
        response = http.get(url)
        assert response.status_code == 200, url
        assert response.content == SAMPLE.read_bytes()
        # The text, spoken in the voice cloned from that sample: a WAV of speech, not an empty answer.
        assert written == str(spoken)
        # A streamed WAV: a header of unknown length (RIFF and data sizes at their maximum), then 24 kHz 16-bit PCM.
        audio = spoken.read_bytes()
        assert (audio[:4], audio[8:16]) == (b"RIFF", b"WAVEfmt "), audio[:16]
        seconds = (len(audio) - 44) / (STREAM_SAMPLE_RATE * 2)
        assert 0.5 < seconds < 10, seconds


def test_bucket_routes_refuse_a_user_and_serve_the_service_key_in_both_clients(up: Running, http: httpx.Client) -> None:
    """Storage's bucket routes (src/http/routes/bucket/) and its public info and HEAD (getObjectInfo.ts): supabase-py
    and supabase-js each get Storage's refusals as a user and the work done with the service key."""
    alice = person(up)
    user = client(up, http, alice.token).storage
    with pytest.raises(StorageApiError) as created:
        user.create_bucket("mine")
    assert (str(created.value.status), created.value.message) == ("403", "new row violates row-level security policy")
    with pytest.raises(StorageApiError) as emptied:
        user.empty_bucket(BUCKET)
    assert (str(emptied.value.status), emptied.value.message) == ("403", "Access denied: Invalid role")
    with pytest.raises(StorageApiError) as deleted:
        user.delete_bucket("nothing-here")
    assert (str(deleted.value.status), deleted.value.message) == ("404", "Bucket not found")

    admin = service(up, http).storage
    admin.create_bucket("py-open", options={"public": True})
    admin.from_("py-open").upload("a/x.wav", SAMPLE.read_bytes(), {"content-type": "audio/wav"})
    assert client(up, http).storage.from_("py-open").info("a/x.wav")["size"] == SAMPLE.stat().st_size
    assert client(up, http).storage.from_("py-open").exists("a/x.wav") is True
    assert admin.empty_bucket("py-open")["message"].startswith("Empty bucket")
    assert admin.delete_bucket("py-open") == {"message": "Successfully deleted"}

    said = run_node(
        "storage_buckets.mjs",
        {
            "url": up.base_url,
            "anonKey": anon_key(up),
            "userToken": alice.token,
            "serviceKey": mint_service_key(load_or_create_jwt_secret(up.pg.data_dir.parent)),
            "bucket": BUCKET,
            "newBucket": "js-open",
            "file": str(SAMPLE),
        },
    )
    rls = "new row violates row-level security policy"
    assert said["userCreate"] == {"data": None, "error": {"message": rls, "status": 400, "statusCode": "403"}}
    assert said["userGet"] == {
        "data": None,
        "error": {"message": "Bucket not found", "status": 400, "statusCode": "404"},
    }
    assert said["userUpdate"]["error"] == {"message": "Bucket not found", "status": 400, "statusCode": "404"}
    assert said["userEmpty"]["error"] == {"message": "Access denied: Invalid role", "status": 403, "statusCode": "403"}
    # voice-samples holds the samples of this module's other tests: Storage counts them first.
    assert said["userDelete"]["error"]["statusCode"] in {"404", "409"}
    assert said["create"] == {"data": {"name": "js-open"}, "error": None}
    assert said["upload"] == {"error": None}
    assert said["info"] == {"name": "a/x.wav", "size": 1000, "error": None}
    assert said["head"] == {"status": 200, "type": "audio/wav", "length": "1000"}
    assert said["get"]["data"]["file_size_limit"] == 1_000_000
    assert said["get"]["data"]["allowed_mime_types"] == ["audio/wav"]
    assert said["update"] == {"data": {"message": "Successfully updated"}, "error": None}
    assert said["deleteFull"]["error"] == {
        "message": "The bucket you tried to delete is not empty",
        "status": 400,
        "statusCode": "409",
    }
    assert said["empty"]["error"] is None
    assert said["delete"] == {"data": {"message": "Successfully deleted"}, "error": None}
    assert said["gone"]["error"] == {"message": "Bucket not found", "status": 400, "statusCode": "404"}


def v2_page(folder: str, objects: list[str], folders: tuple[str, ...] = (), more: bool = False) -> dict[str, Any]:
    """What storage_reads.mjs reports of a list-v2 page of `folder` holding these objects and folders."""
    return {
        "hasNext": more,
        "cursor": "string" if more else "undefined",
        "folders": [f"{folder}/{name}" for name in folders],
        "objects": [f"{folder}/{name}" for name in objects],
        "error": None,
    }


def test_supabase_js_lists_pages_and_reads_info_of_the_users_folder(up: Running, http: httpx.Client) -> None:
    """storage-js's `list` options, `listV2` (Storage's list-v2: src/http/routes/object/listObjectsV2.ts and
    `listObjectsV2` in src/storage/object.ts), `info` and `exists` (getObjectInfo.ts: `/info/:bucketName/*`, HEAD
    `/:bucketName/*`), as the owner of the folder and as another user, whose RLS shows them nothing there."""
    alice, bob = person(up), person(up)
    folder = f"{alice.id}/js-reads"
    said = run_node(
        "storage_reads.mjs",
        {
            "url": up.base_url,
            "anonKey": anon_key(up),
            "userToken": alice.token,
            "otherToken": bob.token,
            "serviceKey": mint_service_key(load_or_create_jwt_secret(up.pg.data_dir.parent)),
            "bucket": BUCKET,
            "folder": folder,
            "names": ["a.wav", "b.wav", "c.wav", "sub/d.wav"],
            "file": str(SAMPLE),
        },
    )
    assert said["uploads"] == [None] * 4
    # One level of the folder, relative names, a folder for `sub` (Storage's `storage.search`).
    assert said["list"] == {"names": ["a.wav", "b.wav", "c.wav", "sub"], "error": None}
    assert said["listSearch"] == {"names": ["b.wav"], "error": None}
    assert said["listPaged"] == {"names": ["c.wav", "b.wav"], "error": None}  # sub, [c, b], a
    assert said["listOther"] == {"names": [], "error": None}

    # list-v2: full names; without the delimiter every object under the prefix, by name bytewise, a page at a time.
    assert said["v2First"] == v2_page(folder, ["a.wav", "b.wav"], more=True)
    assert said["v2Next"] == v2_page(folder, ["c.wav", "sub/d.wav"])
    assert said["v2Level"] == v2_page(folder, ["a.wav", "b.wav", "c.wav"], folders=("sub/",))
    assert said["v2Desc"] == v2_page(folder, ["sub/d.wav", "c.wav", "b.wav", "a.wav"])
    assert said["v2Other"] == v2_page(folder, [])
    # decodeContinuationToken's InvalidParameter, in Storage's legacy envelope (HTTP 400, the status in the body).
    bad_cursor = {"message": "Invalid Parameter continuation token", "status": 400, "statusCode": "400"}
    assert said["v2BadCursor"]["error"] == bad_cursor

    # info: Storage's InfoRenderer body, camelCased by storage-js; another user's RLS finds no such object.
    assert said["info"] == {
        "data": {"name": f"{folder}/a.wav", "bucketId": BUCKET, "size": 1000, "contentType": "audio/wav"},
        "error": None,
    }
    not_found = {"message": "Object not found", "status": 400, "statusCode": "404"}
    assert said["infoOther"] == {"data": None, "error": not_found}
    assert said["head"] == {"status": 200, "type": "audio/wav", "length": "1000"}
    # exists: HEAD, whose NoSuchKey is an HTTP 400 with no body; storage-js reads any 400 or 404 as false.
    assert said["exists"] == {"data": True, "error": None}
    head_refused = {"message": "Bad Request", "status": 400, "statusCode": "400"}
    assert said["existsMissing"] == {"data": False, "error": head_refused}
    assert said["existsOther"] == {"data": False, "error": head_refused}
