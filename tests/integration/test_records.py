"""The typed records and the migrated schema cannot drift: each status enum holds exactly its column's
CHECK constraint values (the table's, or its domain's), and each row record names exactly its table's
columns (so `select *` decodes every column, and a migration that adds, drops or renames one fails here first).
Rows are decoded by column name, so the order is free: `VoiceRow` takes its first fields from `VoiceFields`,
which the API's `Voice` extends too."""

from __future__ import annotations

import enum
import re

import msgspec
import psycopg
import pytest

from backend.domain.attempts import AttemptSource
from backend.domain.voices import VoiceRow, VoiceStatus
from backend.records.sample_rows import SampleRow, VoiceSampleStatus
from backend.records.speech_streams import SpeechStreamOutcome
from backend.records.synthesis_jobs import SynthesisJobRow, SynthesisJobStatus
from backend.records.user_creates import CreateKind

Conn = psycopg.Connection[tuple[object, ...]]


def check_values(db: Conn, table: str, column: str) -> list[str]:
    """The values the column's CHECK allows, in its order: its table's `<table>_<column>_check`, or the one
    CHECK of the domain that is the column's type. `table` is in `public` unless it names its schema."""
    schema, _, name = table.rpartition(".")
    row = db.execute(
        "select coalesce((select pg_get_constraintdef(c.oid) from pg_constraint c"
        "                  where c.conrelid = a.attrelid and c.conname = %s and c.contype = 'c'),"
        "                 (select pg_get_constraintdef(c.oid) from pg_constraint c"
        "                  where c.contypid = a.atttypid and c.contype = 'c'))"
        "  from pg_attribute a where a.attrelid = %s::regclass and a.attname = %s",
        (f"{name}_{column}_check", f"{schema or 'public'}.{name}", column),
    ).fetchone()
    assert row is not None, f"{table} has no column {column}"
    assert row[0] is not None, f"{table}.{column} has no CHECK constraint"
    definition = str(row[0])
    assert f"({column} = ANY (ARRAY[" in definition or "(VALUE = ANY (ARRAY[" in definition, definition
    return re.findall(r"'([^']*)'::text", definition)


def columns(db: Conn, table: str) -> list[str]:
    """The table's columns, in their order."""
    rows = db.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'public' and table_name = %s order by ordinal_position",
        (table,),
    ).fetchall()
    return [str(name) for (name,) in rows]


@pytest.mark.parametrize(
    ("table", "column", "status"),
    [
        ("voices", "status", VoiceStatus),
        ("voice_samples", "status", VoiceSampleStatus),
        ("synthesis_jobs", "status", SynthesisJobStatus),
        ("speech_streams", "outcome", SpeechStreamOutcome),
        ("voice_clone_attempts", "source", AttemptSource),
        ("voicegate.user_creates", "kind", CreateKind),
    ],
)
def test_a_status_enum_holds_exactly_its_check_constraint_values(
    module_db: Conn, table: str, column: str, status: type[enum.StrEnum]
) -> None:
    assert [member.value for member in status] == check_values(module_db, table, column)


@pytest.mark.parametrize(
    ("table", "record"),
    [("voices", VoiceRow), ("voice_samples", SampleRow), ("synthesis_jobs", SynthesisJobRow)],
)
def test_a_row_record_names_exactly_its_table_columns(
    module_db: Conn, table: str, record: type[msgspec.Struct]
) -> None:
    assert sorted(record.__struct_fields__) == sorted(columns(module_db, table))
