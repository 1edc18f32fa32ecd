"""A column's list of allowed values holds for any writer, whether the list is its table's CHECK or the CHECK of
the domain that is its type: a value outside it is refused with check_violation (SQLSTATE 23514), and a
value in it is stored. Each test runs in a rolled-back transaction."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.support import Conn, create_user, seed_attempt, seed_voice

#: (table, column, a value its list allows other than the one the row holds)
COLUMNS = [
    ("voice_clone_attempts", "status", "failed"),
    ("voice_clone_attempts", "provider", "qwen"),
    ("voice_clone_attempts", "source", "custom_voice_id"),
    ("voice_clone_attempts", "runtime_status", "syncing"),
    ("voice_clone_attempts", "preview_status", "generating"),
    ("voice_provider_references", "provider", "cartesia"),
    ("voice_provider_references", "reason", "provider_churn"),
    ("voice_clone_attempt_events", "dimension", "data"),
    ("voices", "status", "failed"),
]


@pytest.fixture
def conn(module_db: Conn) -> Iterator[Conn]:
    with module_db.transaction(force_rollback=True):
        owner = create_user(module_db)
        voice = seed_voice(module_db, owner)
        attempt = seed_attempt(module_db, owner, voice, None)
        module_db.execute(
            "insert into voice_provider_references"
            " (voice_id, owner_id, provider, provider_voice_id, attempt_id, reason)"
            " values (%s, %s, 'local', 'pv-1', %s, 'sample_upload')",
            (voice, owner, attempt["id"]),
        )
        yield module_db


def write(conn: Conn, table: str, column: str, value: str) -> str:
    """Set `column` of one row of `table` to `value`, as a client's text; return what is stored."""
    statement = sql.SQL(
        "update public.{t} set {c} = %s where ctid = (select ctid from public.{t} limit 1) returning {c}"
    )
    row = conn.execute(statement.format(t=sql.Identifier(table), c=sql.Identifier(column)), (value,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(("table", "column", "allowed"), COLUMNS)
def test_a_value_outside_the_list_is_refused_and_one_in_it_stored(
    conn: Conn, table: str, column: str, allowed: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused, conn.transaction():
        write(conn, table, column, "bogus")
    assert refused.value.sqlstate == "23514"
    assert write(conn, table, column, allowed) == allowed
