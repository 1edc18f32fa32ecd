"""Migrations apply to an empty database, twice (the second run is a no-op), on the embedded
PostgreSQL 18 and on Debian's PostgreSQL 15 (Supabase's major version)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from backend import queues
from backend.db.migrate import discover_migrations, migrate
from tests.conftest import PgServer

TABLES = {
    "reflections",
    "voices",
    "voice_consents",
    "voice_samples",
    "voice_clone_attempts",
    "voice_clone_attempt_events",
    "synthesis_jobs",
    "webhook_endpoints",
}


def assert_fully_migrated(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        versions = [
            r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations order by version")
        ]
        assert versions == [m.version for m in discover_migrations()]
        tables = {
            r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public' and rowsecurity")
        }
        assert tables >= TABLES
        migrated = {r[0] for r in conn.execute("select queue_name from pgmq.list_queues()")}
        assert migrated == set(queues.ALL)
        buckets = {r[0]: r[1] for r in conn.execute("select id, file_size_limit from storage.buckets")}
        assert buckets == {
            "voice-samples": 25 * 1024**2,
            "voice-previews": 10 * 1024**2,
            "voice-renders": 50 * 1024**2,
            "voice-metadata": 64 * 1024,
        }
        for queue in queues.WORK_QUEUES:
            triggers = {
                r[0]
                for r in conn.execute(
                    "select tgname from pg_trigger where tgrelid = %s::regclass", (f"pgmq.q_{queue}",)
                )
            }
            # Consumers are woken by voicegate's lock-free NOTIFY, not pgmq's throttled one.
            assert "voicegate_notify_insert" in triggers, queue
            assert "trigger_notify_queue_insert_listeners" not in triggers, queue


@pytest.mark.parametrize("server_fixture", ["pg_server", "pg15_server"])
def test_migrations_apply_to_an_empty_database_twice(request: pytest.FixtureRequest, server_fixture: str) -> None:
    server: PgServer = request.getfixturevalue(server_fixture)
    name = f"empty_{server_fixture}"
    server.drop_database(name)
    dsn = server.create_database(name)
    try:
        first = migrate(dsn)
        assert first.stand_ins_applied
        assert first.applied == [f"{m.version}_{m.name}" for m in discover_migrations()]
        assert_fully_migrated(dsn)

        second = migrate(dsn)
        assert (second.stand_ins_applied, second.pgmq_installed, second.applied) == (False, None, [])
        assert_fully_migrated(dsn)
    finally:
        server.drop_database(name)


def test_an_embedded_database_gets_what_the_stand_ins_gained_since(pg_server: PgServer) -> None:
    """A data directory made before a stand-in was added (Storage's list function) gets it at the next start,
    while a second run still reports the stand-ins as already there."""
    name = "stand_ins_upgrade"
    pg_server.drop_database(name)
    dsn = pg_server.create_database(name)
    search = "select to_regprocedure('storage.search(text, text, int, int, int, text, text, text)') is not null"
    try:
        migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("drop function storage.search(text, text, int, int, int, text, text, text)")
            assert conn.execute(search).fetchone() == (False,)
        assert migrate(dsn).stand_ins_applied is False
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute(search).fetchone() == (True,)
    finally:
        pg_server.drop_database(name)


def test_pg15_server_is_really_postgres_15(pg15_server: PgServer) -> None:
    with psycopg.connect(pg15_server.base_dsn, autocommit=True) as conn:
        assert conn.execute("show server_version_num").fetchone()[0].startswith("15")  # type: ignore[index]


def test_a_failing_migration_is_rolled_back_and_not_recorded(pg_server: PgServer, tmp_path: Path) -> None:
    supabase = tmp_path / "supabase"
    (supabase / "migrations").mkdir(parents=True)
    repo = Path(__file__).resolve().parents[2] / "supabase"
    (supabase / "local").symlink_to(repo / "local")
    (supabase / "config.toml").write_text((repo / "config.toml").read_text())
    (supabase / "migrations" / "20260101000000_good.sql").write_text("create table public.good (id int);")
    (supabase / "migrations" / "20260101000001_bad.sql").write_text(
        "create table public.half (id int); select * from no_such_table;"
    )
    pg_server.drop_database("failing_migration")
    dsn = pg_server.create_database("failing_migration")
    try:
        with pytest.raises(Exception, match=r"20260101000001_bad\.sql failed"):
            migrate(dsn, supabase)
        with psycopg.connect(dsn, autocommit=True) as conn:
            versions = [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")]
            half = conn.execute("select to_regclass('public.half')").fetchone()
        assert versions == ["20260101000000"]
        assert half == (None,)
    finally:
        pg_server.drop_database("failing_migration")
