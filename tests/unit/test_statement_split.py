"""Migration files are cut into statements as the Supabase CLI cuts them (pkg/parser): only at a `;`
outside quotes, comments, dollar-quoted bodies, parentheses and BEGIN ATOMIC bodies; comments stay
with the statement they precede; trailing semicolons and surrounding whitespace are trimmed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.db.migrate import (
    Migration,
    MigrationError,
    discover_migrations,
    pending_migrations,
    policy_grant_target,
    runs_outside_a_transaction,
)
from backend.db.statements import UnterminatedSQLError, split_raw, split_statements

MIGRATIONS = discover_migrations()


@pytest.mark.parametrize("migration", MIGRATIONS, ids=[m.path.name for m in MIGRATIONS])
def test_every_migration_file_round_trips_through_the_split(migration: Migration) -> None:
    text = migration.text()
    pieces = split_raw(text)
    assert "".join(pieces) == text
    statements = split_statements(text)
    assert statements == [p.rstrip(";").strip() for p in pieces if p.rstrip(";").strip()]
    # Put back together with the separators the split took away, the statements are the file again,
    # whitespace aside.
    rejoined = ";".join(statements) + ";"
    assert re.sub(r"\s+", "", rejoined) == re.sub(r"\s+", "", text.rstrip().rstrip(";") + ";")
    assert all(not s.endswith(";") and s == s.strip() for s in statements)


def test_dollar_quoted_bodies_stay_whole() -> None:
    text = (
        "create function f() returns int language plpgsql as $$ begin perform 1; return 2; end $$;\n"
        "do $body$ begin raise notice 'a;b'; perform $x$;$x$; end $body$;\n"
        "select $$;$$, 'it''s; fine', \"odd;name\";"
    )
    assert split_statements(text) == [
        "create function f() returns int language plpgsql as $$ begin perform 1; return 2; end $$",
        "do $body$ begin raise notice 'a;b'; perform $x$;$x$; end $body$",
        "select $$;$$, 'it''s; fine', \"odd;name\"",
    ]


def test_comments_stay_with_the_statement_they_precede_and_hide_semicolons() -> None:
    text = "-- first; still a comment\nselect 1; /* a; /* nested; */ block */ select 2;\n-- trailing note\n"
    assert split_statements(text) == [
        "-- first; still a comment\nselect 1",
        "/* a; /* nested; */ block */ select 2",
        "-- trailing note",
    ]


def test_parentheses_begin_atomic_and_escape_strings_do_not_split() -> None:
    text = (
        "create rule r as on insert to t do also (insert into a values (1); insert into b values (2));\n"
        "create function g() returns int language sql begin atomic select case when true then 1 end; select 2; end;\n"
        "select E'it\\'s; one', positional$1;\n"
        "select 1;;  ;"
    )
    assert split_statements(text) == [
        "create rule r as on insert to t do also (insert into a values (1); insert into b values (2))",
        "create function g() returns int language sql begin atomic select case when true then 1 end; select 2; end",
        "select E'it\\'s; one', positional$1",
        "select 1",
    ]


@pytest.mark.parametrize(
    "text", ["select $$ never closed;", "select 'open;", "/* open; ", "create function h() begin atomic select 1;"]
)
def test_an_unterminated_quote_or_body_is_an_error(text: str) -> None:
    with pytest.raises(UnterminatedSQLError):
        split_raw(text)


@pytest.mark.parametrize(
    ("statement", "target"),
    [
        ("create policy p on storage.objects for select using (true)", "storage.objects"),
        ('-- why\n/* more */ CREATE POLICY "My policy" ON "storage"."objects" USING (true)', "storage.objects"),
        ("drop policy if exists p on storage.buckets", "storage.buckets"),
        ("alter policy p on auth.users using (false)", "auth.users"),
        ("create policy p on public.voices using (true)", None),
        ("create table storage.objects_copy (id int)", None),
        ("select 'create policy p on storage.objects'", None),
    ],
)
def test_policy_commands_on_supautils_tables_are_recognised(statement: str, target: str | None) -> None:
    assert policy_grant_target(statement) == target


def _migrations(tmp_path: Path, *versions: str) -> list[Migration]:
    for version in versions:
        (tmp_path / f"{version}_m.sql").write_text("select 1;")
    return discover_migrations(tmp_path)


def test_pending_migrations_are_the_unapplied_ones_in_order(tmp_path: Path) -> None:
    migrations = _migrations(tmp_path, "20260101000000", "20260102000000", "20260103000000")
    pending = pending_migrations(migrations, ["20260101000000"])
    assert [m.version for m in pending] == ["20260102000000", "20260103000000"]


def test_a_migration_older_than_the_latest_applied_is_refused_unless_include_all(tmp_path: Path) -> None:
    migrations = _migrations(tmp_path, "20260101000000", "20260102000000", "20260103000000", "20260104000000")
    applied = ["20260101000000", "20260103000000"]
    with pytest.raises(MigrationError, match=r"20260102000000_m\.sql would be inserted before .* --include-all"):
        pending_migrations(migrations, applied)
    pending = pending_migrations(migrations, applied, include_all=True)
    assert [m.version for m in pending] == ["20260102000000", "20260104000000"]


@pytest.mark.parametrize(
    ("statement", "alone"),
    [
        ("create index concurrently i on public.t (a)", True),
        ("-- why\n/* more */ CREATE UNIQUE INDEX CONCURRENTLY i ON public.t (a)", True),
        ("drop index concurrently if exists public.i", True),
        ("reindex (verbose) index concurrently public.i", True),
        ("vacuum (analyze) public.t", True),
        ("create index i on public.t (a)", False),
        ("create index concurrently_named on public.t (a)", False),
        ("alter table public.t validate constraint c", False),
        ("select 'create index concurrently i on t (a)'", False),
    ],
)
def test_statements_refused_inside_a_transaction_are_recognised(statement: str, alone: bool) -> None:
    assert runs_outside_a_transaction(statement) is alone
