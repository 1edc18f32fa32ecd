"""Voiceprints are biometric data, the service's alone: a user's token reads every column of their own consents,
samples and clone attempts but the voiceprint (column privileges; RLS still decides which rows), so a PostgREST
`select=*` and a query naming the voiceprint are both refused, and no route answers one. On 360a82a the owner
read all three."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from devkit.db import Conn, create_user, seed_consent, seed_reflection
from tests.integration.api.conftest import User
from tests.support import acting_as, seed_attempt, seed_voice

Client = AsyncTestClient  # type: ignore[type-arg]
PRINT = bytes(range(256)) * 3  # 768 bytes: 192 float32 values
#: Each table that keeps a voiceprint, and the column that holds it.
PRINTS = {
    "public.voice_consents": "voiceprint",
    "public.voice_samples": "voiceprint",
    "public.voice_clone_attempts": "sample_voiceprint",
}


def seeded(db: Conn) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
    """A user with a consent, a sample and an attempt that each keep a voiceprint."""
    owner = create_user(db)
    consent = seed_consent(db, owner)
    voice = seed_voice(db, owner)
    attempt = seed_attempt(db, owner, voice, seed_reflection(db, owner))["id"]
    sample = db.execute(
        "insert into voice_samples (owner_id, consent_id, voice_id, object_path) values (%s, %s, %s, %s) returning id",
        (owner, consent, voice, f"{owner}/sample.wav"),
    ).fetchone()[0]  # type: ignore[index]
    rows = {"public.voice_consents": consent, "public.voice_samples": sample, "public.voice_clone_attempts": attempt}
    for table, column in PRINTS.items():
        db.execute(f"update {table} set {column} = %s where id = %s", (PRINT, rows[table]))
    return owner, rows


@pytest.mark.parametrize("table", sorted(PRINTS))
def test_the_owner_reads_their_row_but_not_its_voiceprint(db: Conn, table: str) -> None:
    owner, rows = seeded(db)
    with acting_as(db, "authenticated", owner) as conn:
        assert conn.execute(f"select id from {table} where id = %s", (rows[table],)).fetchall() == [(rows[table],)]
    for query in (f"select {PRINTS[table]} from {table}", f"select * from {table}"):
        with acting_as(db, "authenticated", owner) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(query)
    with acting_as(db, "service_role") as conn:
        assert conn.execute(f"select {PRINTS[table]} from {table} where id = %s", (rows[table],)).fetchone() == (PRINT,)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_no_api_role_may_read_a_voiceprint_column(db: Conn, role: str) -> None:
    for table, column in PRINTS.items():
        granted = db.execute(
            "select has_column_privilege(%s, %s::regclass, %s, 'select')", (role, table, column)
        ).fetchone()
        assert granted == (False,), (role, table)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_a_samples_partial_prints_are_the_services_alone_like_its_voiceprint(db: Conn, role: str) -> None:
    """Issue 56: each sample keeps the print of every partial utterance (`speech_prints`), biometric data too."""
    owner, rows = seeded(db)
    db.execute("update voice_samples set speech_prints = %s where id = %s", (bytes(392), rows["public.voice_samples"]))
    granted = db.execute(
        "select has_column_privilege(%s, 'public.voice_samples'::regclass, 'speech_prints', 'select')", (role,)
    ).fetchone()
    assert granted == (False,), role
    with acting_as(db, "authenticated", owner) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select speech_prints from voice_samples")
    with acting_as(db, "service_role") as conn:
        stored = conn.execute("select speech_prints from voice_samples where owner_id = %s", (owner,)).fetchone()
        assert stored == (bytes(392),)


async def test_no_answer_about_a_consent_sample_or_attempt_carries_a_voiceprint(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    reflection = (await client.post("/v1/reflections", json={"name": "r"}, headers=user.headers)).json()["id"]
    consent = (
        await client.post("/api/v1/consents", json={"subjectName": "Ada Lovelace"}, headers=user.headers)
    ).json()["consentId"]
    sql.execute("update voice_consents set voiceprint = %s where id = %s", (PRINT, consent))
    answers: list[Any] = [
        (await client.get(f"/api/v1/consents/{consent}", headers=user.headers)).json(),
        (await client.get(f"/v1/reflections/{reflection}/voice-clone-attempts", headers=user.headers)).json(),
        (await client.get("/api/v1/voice-samples", headers=user.headers)).json(),
    ]
    assert all("voiceprint" not in repr(answer).lower() for answer in answers), answers
    assert PRINT.hex()[:32] not in repr(answers)
