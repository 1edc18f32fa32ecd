"""Apply the Supabase stand-ins, pgmq and `supabase/migrations` to a database, once each.

Versions are recorded in `supabase_migrations.schema_migrations` exactly where the Supabase CLI keeps
them, so a database migrated here and one migrated by `supabase db push` agree on what is applied.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import psycopg
from psycopg import sql

from backend.db.bucket_config import BucketConfig, buckets_from_config

log = logging.getLogger(__name__)

SUPABASE_DIR = Path(__file__).resolve().parents[2] / "supabase"
MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every `voicegate migrate` process.
MIGRATION_LOCK_KEY = 0x766F6963_65676174


class MigrationError(RuntimeError):
    """A migration file is misnamed or failed to apply."""


@dataclass(frozen=True)
class Migration:
    """One `supabase/migrations/<version>_<name>.sql` file."""

    version: str
    name: str
    path: Path

    def statements(self) -> str:
        """The file's SQL text."""
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class MigrationReport:
    """What one run did."""

    stand_ins_applied: bool
    pgmq_installed: str | None
    applied: list[str]
    buckets: list[str]


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    """Every migration file in version order; a misnamed `.sql` file is an error, not a skip."""
    directory = directory or SUPABASE_DIR / "migrations"
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name} does not match YYYYMMDDHHMMSS_name.sql")
        migrations.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a version")
    return migrations


def migrate(dsn: str, supabase_dir: Path | None = None) -> MigrationReport:
    """Bring the database at `dsn` up to date. Safe to run concurrently and repeatedly."""
    supabase_dir = supabase_dir or SUPABASE_DIR
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            stand_ins = _apply_stand_ins(conn, supabase_dir / "local")
            pgmq_installed = _ensure_pgmq(conn)
            applied = _apply_migrations(conn, discover_migrations(supabase_dir / "migrations"))
            buckets = buckets_from_config(tomllib.loads((supabase_dir / "config.toml").read_text()))
            _upsert_buckets(conn, buckets)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return MigrationReport(stand_ins, pgmq_installed, applied, [b.id for b in buckets])


def _apply_stand_ins(conn: psycopg.Connection, local_dir: Path) -> bool:
    """Create what Supabase itself provides, unless this database is a Supabase one."""
    row = conn.execute("select to_regclass('auth.users') is not null").fetchone()
    if row is not None and row[0] and _has_supabase_roles(conn):
        return False
    for path in sorted(local_dir.glob("*.sql")):
        with conn.transaction():
            conn.execute(path.read_text(encoding="utf-8"))  # trusted repo file
    return True


def _has_supabase_roles(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select count(*) = 4 from pg_roles where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')"
    ).fetchone()
    return bool(row and row[0])


def _ensure_pgmq(conn: psycopg.Connection) -> str | None:
    """Install pgmq when missing: the extension where the server has it, else the pgmq package's SQL."""
    row = conn.execute("select to_regnamespace('pgmq') is not null").fetchone()
    if row is not None and row[0]:
        return None
    available = conn.execute("select 1 from pg_available_extensions where name = 'pgmq'").fetchone()
    with conn.transaction():
        if available:
            conn.execute("create extension pgmq")
            return "extension"
        conn.execute(files("pgmq").joinpath("sql", "pgmq.sql").read_text(encoding="utf-8"))
    return "sql"


def _apply_migrations(conn: psycopg.Connection, migrations: list[Migration]) -> list[str]:
    conn.execute(
        "create schema if not exists supabase_migrations;"
        " create table if not exists supabase_migrations.schema_migrations"
        " (version text primary key, statements text[], name text)"
    )
    done = {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        text = migration.statements()
        try:
            with conn.transaction():
                conn.execute(text)  # trusted repo file
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, statements, name) values (%s, %s, %s)",
                    (migration.version, [text], migration.name),
                )
        except psycopg.Error as exc:
            raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
        log.info("applied migration %s_%s", migration.version, migration.name)
        applied.append(f"{migration.version}_{migration.name}")
    return applied


def _upsert_buckets(conn: psycopg.Connection, buckets: list[BucketConfig]) -> None:
    with conn.transaction():
        for bucket in buckets:
            conn.execute(
                sql.SQL(
                    "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)"
                    " values (%s, %s, %s, %s, %s)"
                    " on conflict (id) do update set public = excluded.public,"
                    " file_size_limit = excluded.file_size_limit,"
                    " allowed_mime_types = excluded.allowed_mime_types"
                ),
                (bucket.id, bucket.id, bucket.public, bucket.file_size_limit, bucket.allowed_mime_types),
            )
