"""`reflection_sessions`: a session launches only for a ready, synced, previewed active attempt, and
only by the reflection's owner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from devkit.db import Conn, create_user, seed_reflection
from tests.support import acting_as, seed_attempt, seed_voice, transition

LAUNCH = "insert into reflection_sessions (reflection_id, attempt_id) values (%s, %s)"


def ready_attempt(conn: Conn, *, synced: bool, previewed: bool) -> dict[str, Any]:
    owner = create_user(conn)
    attempt = seed_attempt(conn, owner, seed_voice(conn, owner), seed_reflection(conn, owner))
    steps: list[dict[str, Any]] = [
        {"status": "processing", "changes": {"lease_owner": "w", "lease_seconds": 60}},
        {"status": "verifying", "lease_owner": "w"},
        {"status": "ready", "lease_owner": "w"},
    ]
    if synced:
        steps += [{"runtime": "syncing"}, {"runtime": "synced"}]
    if previewed:
        steps += [{"preview": "generating"}, {"preview": "ready"}, {"preview": "completed"}]
    for step in steps:
        attempt = transition(conn, attempt["id"], attempt["version"], **step)
    return attempt


@pytest.fixture
def tx(module_db: Conn) -> Iterator[Conn]:
    with module_db.transaction(force_rollback=True):
        yield module_db


def test_the_owner_launches_a_ready_voice(tx: Conn) -> None:
    attempt = ready_attempt(tx, synced=True, previewed=True)
    with acting_as(tx, "authenticated", attempt["owner_id"]):
        tx.execute(LAUNCH, (attempt["reflection_id"], attempt["id"]))
        assert tx.execute("select owner_id from reflection_sessions").fetchall() == [(attempt["owner_id"],)]


@pytest.mark.parametrize(("synced", "previewed"), [(False, True), (True, False), (False, False)])
def test_a_blocked_voice_cannot_launch_even_by_plain_sql(tx: Conn, synced: bool, previewed: bool) -> None:
    attempt = ready_attempt(tx, synced=synced, previewed=previewed)
    with pytest.raises(psycopg.Error) as refused, tx.transaction():
        tx.execute(LAUNCH, (attempt["reflection_id"], attempt["id"]))
    assert refused.value.sqlstate == "VG422"


def test_another_user_or_anon_cannot_launch_the_owners_reflection(tx: Conn) -> None:
    attempt = ready_attempt(tx, synced=True, previewed=True)
    stranger = create_user(tx)
    for role, user in (("authenticated", stranger), ("anon", None)):
        with acting_as(tx, role, user), pytest.raises(psycopg.errors.InsufficientPrivilege), tx.transaction():
            tx.execute(LAUNCH, (attempt["reflection_id"], attempt["id"]))
