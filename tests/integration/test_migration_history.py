"""`voicegate migrate` applies and records migrations as `supabase db push` does: one
`statements[]` element per statement, each run alone through the extended protocol, one transaction
per file with `lock_timeout = '4s'` (but for a statement refused inside one, run on its own), and a file
older than the latest applied refused unless `--include-all`. A database migrated before the renumbering
of issue 31 is brought along to the new versions, with the same schema as a new one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backend.db import migrate as migrate_module
from backend.db.migrate import RENUMBERED, MigrationError, discover_migrations, migrate
from tests.conftest import PG15_BIN, PgServer
from voicegate import cli

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


def test_a_statement_refused_in_a_transaction_runs_on_its_own_between_committed_ones(
    project: Path, empty_dsn: str
) -> None:
    (project / "migrations" / "20260101000000_index.sql").write_text(
        "create table public.seen (txid bigint, lock_timeout text);\n"
        "insert into public.seen select txid_current(), current_setting('lock_timeout');\n"
        "set lock_timeout = '3s';\n"
        "create index concurrently seen_txid_idx on public.seen (txid);\n"
        "insert into public.seen select txid_current(), current_setting('lock_timeout');\n"
    )
    assert migrate(empty_dsn, project).applied == ["20260101000000_index"]
    with psycopg.connect(empty_dsn) as conn:
        rows = conn.execute("select txid, lock_timeout from public.seen order by txid").fetchall()
        valid = conn.execute("select indisvalid from pg_index where indexrelid = 'public.seen_txid_idx'::regclass")
        assert valid.fetchone() == (True,)
    # The statements before the index committed before it was built, the one after in a transaction of its
    # own, under the file's own lock_timeout.
    assert rows[0][0] != rows[1][0]
    assert [timeout for _, timeout in rows] == ["4s", "3s"]
    assert versions(empty_dsn) == ["20260101000000"]


def test_a_file_failing_after_a_concurrent_index_keeps_what_ran_and_is_not_recorded(
    project: Path, empty_dsn: str
) -> None:
    (project / "migrations" / "20260101000000_half.sql").write_text(
        "create table public.half (id int);\n"
        "create index concurrently half_id_idx on public.half (id);\n"
        "select * from no_such_table;\n"
    )
    with pytest.raises(MigrationError, match=r"20260101000000_half\.sql failed.*no_such_table"):
        migrate(empty_dsn, project)
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("select to_regclass('public.half_id_idx') is not null").fetchone() == (True,)
    assert versions(empty_dsn) == []


# main before the ahead-dated migrations were renumbered (issue 31).
BEFORE_RENUMBERING = "ecff6b519f8244f6effa596566952efb952d9815"


def has_commit(commit: str) -> bool:
    """Whether the git history holds `commit` (a shallow clone may not)."""
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO_SUPABASE.parent, capture_output=True, check=False
    )
    return found.returncode == 0


def files_at(commit: str, directory: Path) -> None:
    """Write supabase/migrations as it was at `commit` into `directory`, from the git history."""
    repo = REPO_SUPABASE.parent
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", commit, "supabase/migrations/"],
        cwd=repo, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert listing.returncode == 0, f"this test needs commit {commit} of the git history: {listing.stderr.strip()}"
    for path in listing.stdout.split():
        shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True, check=True)
        (directory / Path(path).name).write_bytes(shown.stdout)


def schema(dsn: str) -> str:
    dump = subprocess.run(
        [str(PG15_BIN / "pg_dump"), "--schema-only", "--restrict-key=schema", "-d", dsn],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dump.stdout


@pytest.mark.pg15
def test_a_database_migrated_before_the_renumbering_is_brought_along_and_has_the_same_schema(
    pg15_server: PgServer, pg15_template_db: str, tmp_path: Path
) -> None:
    old = tmp_path / "supabase"
    (old / "migrations").mkdir(parents=True)
    (old / "local").symlink_to(REPO_SUPABASE / "local")
    (old / "config.toml").write_text((REPO_SUPABASE / "config.toml").read_text())
    pg15_server.drop_database("before_renumbering")
    dsn = pg15_server.create_database("before_renumbering")
    try:
        if has_commit(BEFORE_RENUMBERING):
            files_at(BEFORE_RENUMBERING, old / "migrations")
            migrate(dsn, old)
        else:
            # A shallow clone lacks the old files: the old bookkeeping is made from today's instead, so the
            # renaming is still tested (the schema comparison is then between two runs of today's files).
            migrate(dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                for before, (after, *split_off) in RENUMBERED.items():
                    conn.execute(
                        "update supabase_migrations.schema_migrations set version = %s where version = %s",
                        (before, after),
                    )
                    conn.execute(
                        "delete from supabase_migrations.schema_migrations where version = any(%s)", (split_off,)
                    )
        old_versions = versions(dsn)
        assert set(RENUMBERED) <= set(old_versions)
        with psycopg.connect(dsn, autocommit=True) as conn:
            ran = dict(conn.execute("select version, statements from supabase_migrations.schema_migrations"))
            # One version already recorded by hand, as `supabase migration repair --status applied` records it.
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values ('20261123175011', 'voice_sample_sets', '{}')"
            )

        # Only what was added after the renumbering runs (in the shallow-clone case it ran already).
        last = max(version for renumbered in RENUMBERED.values() for version in renumbered)
        added_since = [f"{m.version}_{m.name}" for m in discover_migrations() if m.version > last]
        assert migrate(dsn).applied == [name for name in added_since if name[:14] not in old_versions]

        migrations = discover_migrations()
        assert versions(dsn) == [m.version for m in migrations]
        with psycopg.connect(dsn) as conn:
            recorded = dict(conn.execute("select version, statements from supabase_migrations.schema_migrations"))
        for before, (after, *split_off) in RENUMBERED.items():
            if after != "20261123175011":
                assert recorded[after] == ran[before], after  # what ran, under its new version
            assert all(recorded[version] == [] for version in split_off)
        assert schema(dsn) == schema(pg15_server.dsn_for(pg15_template_db))
    finally:
        pg15_server.drop_database("before_renumbering")
