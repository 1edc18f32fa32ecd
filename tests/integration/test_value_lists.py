"""A column's CHECK (a list of allowed values, a range, a length, a pattern) holds for any writer, whether it is
its table's CHECK or the CHECK of the domain that is its type (migrations 20261125100200 and 20261126090601
moved them there): a value outside it is refused with check_violation (SQLSTATE 23514), and a value in it is
stored. Each test runs in a rolled-back transaction."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from devkit.db import Conn, create_user
from tests.support import seed_attempt, seed_voice

# An ECAPA-TDNN print: 192 float32 (GE2E's 1,024 bytes are refused since 20261128081500_ecapa_voiceprints).
_PRINT = "\\x" + "00" * 768

#: (table, column, a value its CHECK refuses, one it allows other than the one the row holds), as a client's text
COLUMNS = [
    ("voice_clone_attempts", "status", "bogus", "failed"),
    ("voice_clone_attempts", "provider", "bogus", "qwen"),
    ("voice_clone_attempts", "source", "bogus", "custom_voice_id"),
    ("voice_clone_attempts", "runtime_status", "bogus", "syncing"),
    ("voice_clone_attempts", "preview_status", "bogus", "generating"),
    ("voice_clone_attempts", "last_error_message", "x" * 501, "x" * 500),
    ("voice_clone_attempts", "likeness", "1.5", "-0.25"),
    ("voice_clone_attempts", "likeness_threshold", "-0.1", "0.5"),
    ("voice_clone_attempts", "likeness_source", "bogus", "render"),
    ("voice_clone_attempts", "likeness_error", "", "no_sample"),
    ("voice_clone_attempts", "retry_count", "-1", "3"),
    ("voice_clone_attempts", "max_retries", "-1", "0"),
    ("voice_clone_attempts", "sample_voiceprint", "\\x00", _PRINT),
    ("voice_provider_references", "provider", "bogus", "cartesia"),
    ("voice_provider_references", "reason", "bogus", "provider_churn"),
    ("voice_provider_references", "provider_voice_id", "", "pv-2"),
    ("voice_provider_references", "gone_reason", "bogus", "model_retired"),
    ("voice_clone_attempt_events", "dimension", "bogus", "data"),
    ("voice_clone_attempt_events", "actor", "", "worker:w"),
    ("voices", "status", "bogus", "failed"),
    ("voices", "tts_provider", "bogus", "qwen"),
    ("voices", "language", "English", "pt-BR"),
    ("voicegate.service_object_writes", "sha256", "A" * 64, "a" * 64),
    ("voicegate.service_object_writes", "size_bytes", "-1", "0"),
]


@pytest.fixture
def conn(module_db: Conn) -> Iterator[Conn]:
    with module_db.transaction(force_rollback=True):
        owner = create_user(module_db)
        voice = seed_voice(module_db, owner)
        attempt = seed_attempt(module_db, owner, voice, None)
        module_db.execute(
            "insert into voice_provider_references"
            " (voice_id, owner_id, provider, provider_voice_id, attempt_id, reason, gone_at, gone_reason)"
            " values (%s, %s, 'local', 'pv-1', %s, 'sample_upload', now(), 'voice_not_found')",
            (voice, owner, attempt["id"]),
        )
        module_db.execute(
            "insert into voicegate.service_object_writes (bucket_id, name, sha256, size_bytes)"
            " values ('voice-metadata', 'a/b.json', %s, 2)",
            ("0" * 64,),
        )
        yield module_db


def write(conn: Conn, table: str, column: str, value: str) -> str:
    """Set `column` of one row of `table` (`public` unless named) to `value`, as a client's text; return what is
    stored, as text."""
    name = sql.Identifier(*table.split(".")) if "." in table else sql.Identifier("public", table)
    statement = sql.SQL("update {t} set {c} = %s where ctid = (select ctid from {t} limit 1) returning {c}::text")
    row = conn.execute(statement.format(t=name, c=sql.Identifier(column)), (value,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(("table", "column", "refused", "allowed"), COLUMNS)
def test_a_value_its_check_refuses_is_refused_and_one_it_allows_stored(
    conn: Conn, table: str, column: str, refused: str, allowed: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refusal, conn.transaction():
        write(conn, table, column, refused)
    assert refusal.value.sqlstate == "23514"
    assert write(conn, table, column, allowed) == allowed


#: The tables the clone lifecycle writes on every attempt, and the single-column table CHECKs left on them: those
#: on a column an expression or partial index names, whose type change would build the index again.
_LIFECYCLE_TABLES = (
    "public.voice_clone_attempts",
    "public.voice_clone_attempt_events",
    "public.voice_provider_references",
    "public.voices",
    "voicegate.service_object_writes",
)
_LEFT = {"voices_name_check", "voices_tts_provider_check"}


def test_the_lifecycle_tables_check_single_columns_by_their_domains(module_db: Conn) -> None:
    # A table CHECK is compiled again by every statement that writes the table (see the migrations above).
    rows = module_db.execute(
        "select c.conname from pg_constraint c"
        " where c.contype = 'c' and c.conrelid = any(%s::regclass[]) and cardinality(c.conkey) = 1"
        " order by 1",
        (list(_LIFECYCLE_TABLES),),
    ).fetchall()
    assert {str(name) for (name,) in rows} == _LEFT
