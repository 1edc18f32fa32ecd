"""`POST /v1/reflections/{id}/voice/clone` (multipart, streamed) and `PATCH .../voice`: each refusal
has its own code and writes nothing (no row, no stored object); an Idempotency-Key replays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from devkit.db import Conn, one
from fakes.audio import tone_wav
from tests.integration.api.conftest import User

Client = AsyncTestClient  # type: ignore[type-arg]
WAV = tone_wav(4.0, 24000)


async def clone(
    client: Client,
    user: User,
    reflection_id: str,
    data: bytes = WAV,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:
    form = {"consent": "true", **fields}
    return await client.post(
        f"/v1/reflections/{reflection_id}/voice/clone",
        data=form,
        files={"file": ("me.wav", data, "audio/wav")},
        headers={**user.headers, **(headers or {})},
    )


async def reflection(client: Client, user: User) -> str:
    created = await client.post("/v1/reflections", json={"name": "r"}, headers=user.headers)
    return str(created.json()["id"])


def nothing_written(sql: Conn, data_dir: Path) -> bool:
    counts = one(
        sql,
        "select (select count(*) from voice_samples) + (select count(*) from voice_clone_attempts)"
        " + (select count(*) from voices) + (select count(*) from storage.objects) as n",
    )
    stored = [p for p in (data_dir / "storage").rglob("*") if p.is_file()] if (data_dir / "storage").exists() else []
    return counts["n"] == 0 and not stored


async def test_clone_stores_the_sample_and_queues_an_attempt(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = await reflection(client, alice)
    accepted = await clone(client, alice, rid, language="en", transcript="hello")
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert (body["status"], body["provider"], body["sniffedType"]) == ("queued", "local", "audio/wav")
    sample = one(sql, "select object_path, size_bytes, transcript, language from voice_samples")
    assert sample == {
        "object_path": f"{alice.id}/{body['voiceId']}/original",
        "size_bytes": len(WAV),
        "transcript": "hello",
        "language": "en",
    }
    assert one(sql, "select count(*) as n from storage.objects where name = %s", (sample["object_path"],))["n"] == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"consent": "false"}, 400, "consent_required"),
        ({"data": b"this is a text file renamed to sample.wav\n" * 50}, 415, "unsupported_audio_format"),
        ({"data": WAV[:44] + bytes(21 * 1024 * 1024)}, 413, "sample_too_large"),
        ({"provider": "qwen"}, 422, "provider_not_configured"),
        ({"language": "not a tag"}, 400, "validation_failed"),
        ({"colour": "blue"}, 400, "validation_failed"),
    ],
    ids=["no-consent", "not-audio", "too-large", "unconfigured-provider", "bad-language", "unknown-field"],
)
async def test_clone_refusals_write_nothing(
    client: Client,
    make_user: Callable[[], User],
    sql: Conn,
    tmp_path: Path,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    alice = make_user()
    rid = await reflection(client, alice)
    data = change.pop("data", WAV)
    refused = await clone(client, alice, rid, data, **change)
    assert (refused.status_code, refused.json()["code"]) == (status, code), refused.text
    assert nothing_written(sql, tmp_path)


async def test_clone_without_a_file_or_as_json_is_refused(client: Client, make_user: Callable[[], User]) -> None:
    alice = make_user()
    rid = await reflection(client, alice)
    no_file = await client.post(
        f"/v1/reflections/{rid}/voice/clone",
        data={"consent": "true", "x": "y"},
        files={"other": ("a", b"b")},
        headers=alice.headers,
    )
    assert no_file.status_code == 400
    as_json = await client.post(f"/v1/reflections/{rid}/voice/clone", json={"consent": True}, headers=alice.headers)
    assert (as_json.status_code, as_json.json()["code"]) == (415, "unsupported_media_type")


async def test_clone_on_another_users_reflection_is_not_found(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    alice, mallory = make_user(), make_user()
    rid = await reflection(client, alice)
    refused = await clone(client, mallory, rid)
    assert refused.status_code == 404
    assert nothing_written(sql, tmp_path)


async def test_clone_with_an_idempotency_key_replays_and_refuses_another_file(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = await reflection(client, alice)
    key = {"Idempotency-Key": "clone-1"}
    first = await clone(client, alice, rid, headers=key)
    again = await clone(client, alice, rid, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await clone(client, alice, rid, data=tone_wav(4.0, 24000, freq=300.0), headers=key)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert one(sql, "select count(*) as n from voice_clone_attempts")["n"] == 1
    assert one(sql, "select count(*) as n from storage.objects")["n"] == 1


async def test_patch_refuses_an_unknown_provider_voice_and_bad_bodies(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = await reflection(client, alice)
    unknown = await client.patch(
        f"/v1/reflections/{rid}/voice", json={"provider": "local", "voice_id": "local-x"}, headers=alice.headers
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "provider_voice_not_found")
    bad = await client.patch(
        f"/v1/reflections/{rid}/voice", json={"provider": "local", "voice_id": "a b"}, headers=alice.headers
    )
    assert bad.status_code == 400
    extra = await client.patch(
        f"/v1/reflections/{rid}/voice",
        json={"provider": "local", "voice_id": "x", "admin": True},
        headers=alice.headers,
    )
    assert extra.status_code == 400
    mallory = make_user()
    theirs = await client.patch(
        f"/v1/reflections/{rid}/voice", json={"provider": "local", "voice_id": "local-x"}, headers=mallory.headers
    )
    assert theirs.status_code == 404
    assert one(sql, "select count(*) as n from voice_clone_attempts")["n"] == 0
