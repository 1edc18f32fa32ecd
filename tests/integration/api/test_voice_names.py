"""Each of a user's live voices has a name of its own, compared without case or outer spaces (issue 47). A name
the caller gives that another of their voices has is a 409 `voice_name_taken` on every route that names a voice,
and writes nothing; a voice voicegate names itself (no name given) takes the first free `name (2)`, `name (3)`…
and is never refused for it. A deleted voice's name is free again; another user's names are theirs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from devkit.db import Conn, one, seed_consent
from tests.integration.api.conftest import User
from tests.integration.api.test_clone_api import WAV as FINALIZE_WAV
from tests.integration.api.test_clone_api import put_sample, upload_url
from tests.integration.api.test_reflection_voice_api import clone
from tests.integration.api.test_reflections_api import new_reflection
from tests.support import seed_attempt, seed_voice

Client = AsyncTestClient  # type: ignore[type-arg]


def taken(response: httpx.Response, name: str) -> None:
    """A 409 problem saying, in a sentence, that the caller has a voice named `name`."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["detail"]) == (
        "voice_name_taken",
        f"You have a voice named “{name}” already: choose another name.",
    )


def names(sql: Conn, owner: uuid.UUID) -> list[str]:
    """The owner's live voices' names, oldest first."""
    rows = sql.execute(
        "select name from voices where owner_id = %s and deleted_at is null order by created_at, id", (owner,)
    )
    return [row[0] for row in rows]


def written(sql: Conn) -> dict[str, int]:
    tables = ("voices", "voice_consents", "voice_samples", "voice_clone_attempts", "synthesis_jobs")
    return {table: one(sql, f"select count(*) as n from {table}")["n"] for table in tables}


def stored(data_dir: Path) -> list[Path]:
    """Every file the Storage stand-in holds."""
    return sorted(path for path in (data_dir / "storage").rglob("*") if path.is_file())


def ready_sample(sql: Conn, owner: uuid.UUID, name: str | None) -> str:
    """A checked sample of `owner` for the local engine, named `name`, not cloned yet."""
    return str(
        one(
            sql,
            "insert into voice_samples (owner_id, consent_id, object_path, status, provider, name)"
            " values (%s, %s, %s, 'ready', 'local', %s) returning id",
            (owner, seed_consent(sql, owner), f"{owner}/samples/{uuid.uuid4()}/original", name),
        )["id"]
    )


def engine_voice(sql: Conn, owner: uuid.UUID, voice_id: str, name: str) -> None:
    """A voice the local engine holds under `name`, enrolled by one of `owner`'s attempts (so theirs to attach)."""
    profile = {"median_f0_hz": 120.0, "f0_sd_semitones": 2.0, "syllable_rate_hz": 4.0, "envelope_db": [0.0] * 24}
    sql.execute(
        "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
        " values (%s, %s, 'en', %s, %s)",
        (voice_id, name, f"key-{voice_id}", json.dumps(profile)),
    )
    attempt = seed_attempt(sql, owner, seed_voice(sql, owner, f"Enrolled {voice_id}"), None)
    sql.execute("update voice_clone_attempts set enrolment_key = %s where id = %s", (f"key-{voice_id}", attempt["id"]))


async def test_a_name_given_that_another_voice_has_is_a_409_on_every_route_that_names_a_voice(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    alice = make_user()
    seed_voice(sql, alice.id, "Ada")
    bob = seed_voice(sql, alice.id, "Bob")
    rid = (await new_reflection(client, alice, "Reading"))["id"]
    sample = ready_sample(sql, alice.id, "Kitchen")
    draft = await upload_url(client, alice, name="Draft")
    await put_sample(client, draft, FINALIZE_WAV)
    engine_voice(sql, alice.id, "local-rachel", "Rachel")
    before, stored_before = written(sql), stored(tmp_path)

    renamed = await client.patch(f"/api/voices/{bob}", json={"name": "  aDa "}, headers=alice.headers)
    taken(renamed, "aDa")
    body = {"name": "ADA", "consent": True}
    taken(await client.post("/api/clone/upload-url", json=body, headers=alice.headers), "ADA")
    finalize = {"voice_id": draft["voice_id"], "name": "Ada"}
    taken(await client.post("/api/clone/finalize", json=finalize, headers=alice.headers), "Ada")
    taken(await clone(client, alice, rid, name="ada"), "ada")
    job = {"sampleId": sample, "text": "Hello there.", "name": "Ada"}
    taken(await client.post("/api/v1/clone", json=job, headers=alice.headers), "Ada")
    made = {"sampleIds": [sample], "name": "Ada"}
    taken(await client.post("/api/voices", json=made, headers=alice.headers), "Ada")
    attach = {"provider": "local", "voice_id": "local-rachel", "name": "Ada"}
    taken(await client.patch(f"/v1/reflections/{rid}/voice", json=attach, headers=alice.headers), "Ada")

    assert (written(sql), stored(tmp_path)) == (before, stored_before)
    assert names(sql, alice.id)[:2] == ["Ada", "Bob"]

    # Its own name, in other letters, is not another's; another user's names are theirs.
    assert (await client.patch(f"/api/voices/{bob}", json={"name": "BOB"}, headers=alice.headers)).status_code == 200
    carol = make_user()
    assert (await client.post("/api/clone/upload-url", json=body, headers=carol.headers)).status_code == 201


async def test_a_name_is_free_again_once_its_voice_is_deleted(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    ada, bob = seed_voice(sql, alice.id, "Ada"), seed_voice(sql, alice.id, "Bob")
    taken(await client.patch(f"/api/voices/{bob}", json={"name": "Ada"}, headers=alice.headers), "Ada")
    assert (await client.delete(f"/api/voices/{ada}", headers=alice.headers)).status_code == 204
    renamed = await client.patch(f"/api/voices/{bob}", json={"name": "Ada"}, headers=alice.headers)
    assert (renamed.status_code, renamed.json()["name"]) == (200, "Ada")


async def test_a_voice_voicegate_names_takes_the_first_free_name(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    # The reflection's voice is named after it: a second clone's voice cannot take the first's name.
    rid = (await new_reflection(client, alice, "Reading"))["id"]
    for _ in range(2):
        cloned = await clone(client, alice, rid)
        assert cloned.status_code == 202, cloned.text
    # A job's voice takes its sample's name; a set's, its first sample's; one with no name, "Voice from sample".
    seed_voice(sql, alice.id, "kitchen ")  # as a name stored before names were stripped
    jobs: list[dict[str, Any]] = [
        {"sampleId": ready_sample(sql, alice.id, "Kitchen"), "text": "Hello."},
        {"sampleId": ready_sample(sql, alice.id, None), "text": "Hello."},
        {"sampleId": ready_sample(sql, alice.id, None), "text": "Hello."},
    ]
    for job in jobs:
        accepted = await client.post("/api/v1/clone", json=job, headers=alice.headers)
        assert accepted.status_code == 202, accepted.text
    made = await client.post(
        "/api/voices", json={"sampleIds": [ready_sample(sql, alice.id, "Kitchen")]}, headers=alice.headers
    )
    assert made.status_code == 202, made.text
    # A voice attached from the provider takes the provider's name for it.
    engine_voice(sql, alice.id, "local-reading", "Reading")
    attach = {"provider": "local", "voice_id": "local-reading"}
    attached = await client.patch(f"/v1/reflections/{rid}/voice", json=attach, headers=alice.headers)
    assert attached.status_code == 202, attached.text

    assert names(sql, alice.id) == [
        "Reading",
        "Reading (2)",
        "kitchen ",
        "Kitchen (2)",
        "Voice from sample",
        "Voice from sample (2)",
        "Kitchen (3)",
        "Enrolled local-reading",
        "Reading (3)",
    ]
