"""`voicegate migrate` applies and records migrations as `supabase db push` does: one
`statements[]` element per statement, each run alone through the extended protocol, one transaction
per file with `lock_timeout = '4s'`, and a file older than the latest applied refused unless
`--include-all`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backend import cli
from backend.db import migrate as migrate_module
from backend.db.migrate import MigrationError, discover_migrations, migrate
from tests.conftest import PgServer

REPO_SUPABASE = Path(__file__).resolve().parents[2] / "supabase"


def test_every_migration_is_recorded_with_the_statements_of_its_file(any_db_dsn: str) -> None:
    with psycopg.connect(any_db_dsn) as conn:
        recorded = conn.execute(
            "select version, name, statements from supabase_migrations.schema_migrations order by version"
        ).fetchall()
    expected = [(m.version, m.name, m.statements()) for m in discover_migrations()]
    assert recorded == expected
    # Not one element per file: most files hold many statements.
    assert sum(len(statements) for _, _, statements in recorded) > 3 * len(recorded)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A supabase/ directory with the repo's stand-ins and config and migrations of its own."""
    supabase = tmp_path / "supabase"
    (supabase / "migrations").mkdir(parents=True)
    (supabase / "local").symlink_to(REPO_SUPABASE / "local")
    (supabase / "config.toml").write_text((REPO_SUPABASE / "config.toml").read_text())
    return supabase


@pytest.fixture
def empty_dsn(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with nothing in it yet, dropped afterwards."""
    name = f"history_{request.node.name}"[:63].lower().replace("[", "_").replace("]", "").replace("-", "_")
    pg_server.drop_database(name)
    yield pg_server.create_database(name)
    pg_server.drop_database(name)


def versions(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations order by 1")]


def test_a_migration_older_than_the_latest_applied_is_refused_unless_include_all(project: Path, empty_dsn: str) -> None:
    migrations = project / "migrations"
    (migrations / "20260101000000_first.sql").write_text("create table public.first (id int);")
    (migrations / "20260103000000_third.sql").write_text("create table public.third (id int);")
    assert migrate(empty_dsn, project).applied == ["20260101000000_first", "20260103000000_third"]

    (migrations / "20260102000000_merged_late.sql").write_text("create table public.late (id int);")
    (migrations / "20260104000000_fourth.sql").write_text("create table public.fourth (id int);")
    with pytest.raises(MigrationError, match=r"20260102000000_merged_late\.sql would be inserted before"):
        migrate(empty_dsn, project)
    assert versions(empty_dsn) == ["20260101000000", "20260103000000"]
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("select to_regclass('public.late'), to_regclass('public.fourth')").fetchone() == (
            None,
            None,
        )

    report = migrate(empty_dsn, project, include_all=True)
    assert report.applied == ["20260102000000_merged_late", "20260104000000_fourth"]
    assert versions(empty_dsn) == ["20260101000000", "20260102000000", "20260103000000", "20260104000000"]


def test_each_migration_runs_with_the_clis_lock_timeout_in_its_own_transaction(project: Path, empty_dsn: str) -> None:
    (project / "migrations" / "20260101000000_seen.sql").write_text(
        "create table public.seen as select current_setting('lock_timeout') as lock_timeout,"
        " current_user as migrated_by, txid_current() as txid;\n"
        "insert into public.seen select current_setting('lock_timeout'), current_user, txid_current();\n"
    )
    migrate(empty_dsn, project)
    with psycopg.connect(empty_dsn) as conn:
        rows = conn.execute("select lock_timeout, migrated_by, txid from public.seen").fetchall()
        statements = conn.execute("select statements from supabase_migrations.schema_migrations").fetchone()
    # Run by the stand-ins' migrating role, which plays Supabase's non-superuser `postgres`.
    assert [(timeout, role) for timeout, role, _ in rows] == [("4s", "voicegate_migrator")] * 2
    assert rows[0][2] == rows[1][2]
    assert statements is not None
    assert len(statements[0]) == 2


def test_a_piece_holding_two_statements_fails_as_it_would_under_the_cli(
    project: Path, empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A splitter that missed a boundary: the extended protocol takes one statement at a time.
    monkeypatch.setattr(migrate_module, "split_statements", lambda text: [text])
    (project / "migrations" / "20260101000000_two.sql").write_text("create table public.a (id int); select 1;")
    with pytest.raises(MigrationError, match="cannot insert multiple commands into a prepared statement"):
        migrate(empty_dsn, project)
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("select to_regclass('public.a')").fetchone() == (None,)


def test_voicegate_migrate_takes_include_all() -> None:
    parser = cli._parser()
    assert parser.parse_args(["migrate", "--include-all"]).include_all is True
    assert parser.parse_args(["migrate"]).include_all is False
