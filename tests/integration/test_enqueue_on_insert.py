"""Invariant 6: inserting an attempt enqueues VOICE_CLONE_PROCESS in the inserting transaction."""

from __future__ import annotations

import psycopg

from devkit.db import Conn, create_user, seed_reflection
from tests.support import acting_as, queue_messages, seed_voice


def insert_attempt_sql(conn: Conn) -> str:
    owner = create_user(conn)
    voice, reflection = seed_voice(conn, owner), seed_reflection(conn, owner)
    return conn.execute(
        "select format('insert into voice_clone_attempts (owner_id, voice_id, reflection_id, provider, source)"
        " values (%%L, %%L, %%L, ''local'', ''sample_upload'') returning id', %s::uuid, %s::uuid, %s::uuid)",
        (owner, voice, reflection),
    ).fetchone()[0]  # type: ignore[index]


def test_a_plain_sql_insert_as_service_role_enqueues_exactly_one_message(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        statement = insert_attempt_sql(setup)
    with psycopg.connect(db_dsn) as conn:
        conn.execute("set role service_role")
        attempt_id = conn.execute(statement).fetchone()[0]  # type: ignore[index]
        conn.commit()
    with psycopg.connect(db_dsn, autocommit=True) as check:
        messages = queue_messages(check, "voice_clone_process")
    assert len(messages) == 1
    assert messages[0]["message"] == {
        "type": "VOICE_CLONE_PROCESS",
        "attemptId": str(attempt_id),
        "reflectionId": messages[0]["message"]["reflectionId"],
        "version": 1,
    }
    assert messages[0]["message"]["reflectionId"] is not None


def test_a_rolled_back_insert_enqueues_nothing(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as setup:
        statement = insert_attempt_sql(setup)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(statement)
        assert len(queue_messages(conn, "voice_clone_process")) == 1  # visible inside the transaction
        conn.rollback()
    with psycopg.connect(db_dsn, autocommit=True) as check:
        assert queue_messages(check, "voice_clone_process") == []
        assert check.execute("select count(*) from voice_clone_attempts").fetchone() == (0,)


def test_each_committed_insert_enqueues_its_own_message(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ids = [conn.execute(insert_attempt_sql(conn)).fetchone()[0] for _ in range(3)]  # type: ignore[index]
        messages = queue_messages(conn, "voice_clone_process")
    assert [m["message"]["attemptId"] for m in messages] == [str(i) for i in ids]


def test_users_cannot_reach_the_queue_directly(db: Conn) -> None:
    for role in ("anon", "authenticated"):
        with acting_as(db, role, create_user(db) if role == "authenticated" else None):
            try:
                db.execute("select pgmq.send('voice_clone_process', '{}'::jsonb)")
            except psycopg.errors.InsufficientPrivilege:
                continue
            raise AssertionError(f"{role} could send to a queue")
