"""Apply the Supabase stand-ins, pgmq and `supabase/migrations` to a database, once each.

Migrations run as `supabase db push` runs them (supabase/cli pkg/migration): every file is cut into
statements (backend/db/statements.py), each statement runs on its own through the extended protocol
inside one transaction per file with `lock_timeout = '4s'`, and the version, name and statements
are recorded in `supabase_migrations.schema_migrations`, so a database migrated here and one migrated
by the CLI agree on what is applied. A file older than the latest applied version is refused unless
`include_all` (the CLI's `--include-all`).

Where the stand-ins are in place the migrations run as `voicegate_migrator`, which plays Supabase's
non-superuser `postgres`; the policy commands supautils lets `postgres` run on tables it does not own
(`supautils.policy_grants`) run as the session's superuser instead, as supautils runs them.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from backend.db.bucket_config import BucketConfig, buckets_from_config
from backend.db.queries import load_queries
from backend.db.statements import split_statements

log = logging.getLogger(__name__)

_Q = load_queries(Path(__file__).with_suffix(".sql"))
Conn = psycopg.Connection[dict[str, object]]

# The repository's `supabase/` through the `backend/db/supabase` symlink, whose files a wheel carries as
# package data: an installed voicegate (the container image) migrates without a checkout.
SUPABASE_DIR = Path(__file__).resolve().parent / "supabase"
MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every `voicegate migrate` process.
MIGRATION_LOCK_KEY = 0x766F6963_65676174
# supabase/postgres ansible/files/postgresql_config/supautils.conf.j2, `supautils.policy_grants`
# for `postgres`: the tables whose policies it may manage without owning them.
POLICY_GRANTS = frozenset(
    {
        "auth.audit_log_entries",
        "auth.identities",
        "auth.refresh_tokens",
        "auth.sessions",
        "auth.users",
        "realtime.messages",
        "storage.buckets",
        "storage.migrations",
        "storage.objects",
        "storage.s3_multipart_uploads",
        "storage.s3_multipart_uploads_parts",
    }
)
_POLICY_COMMAND = re.compile(
    r"(?:create|alter|drop)\s+policy\s+(?:if\s+exists\s+)?(?:\"(?:[^\"]|\"\")+\"|\w+)\s+on\s+(?:only\s+)?"
    r"(?P<table>(?:\"(?:[^\"]|\"\")+\"|\w+)\s*\.\s*(?:\"(?:[^\"]|\"\")+\"|\w+)|\"(?:[^\"]|\"\")+\"|\w+)",
    re.IGNORECASE,
)
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)


class MigrationError(RuntimeError):
    """A migration file is misnamed, out of order, or failed to apply."""


@dataclass(frozen=True)
class Migration:
    """One `supabase/migrations/<version>_<name>.sql` file."""

    version: str
    name: str
    path: Path

    def text(self) -> str:
        """The file's SQL text."""
        return self.path.read_text(encoding="utf-8")

    def statements(self) -> list[str]:
        """The file's statements, as the Supabase CLI runs and records them."""
        return split_statements(self.text())


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


def pending_migrations(
    migrations: Sequence[Migration], applied: Sequence[str], *, include_all: bool = False
) -> list[Migration]:
    """The migrations still to apply, in version order.

    Like the CLI, a file older than the latest applied version (a branch merged after a newer one
    was pushed) is refused unless `include_all`: applied late, it could run against a schema it was
    not written for.
    """
    done = set(applied)
    todo = [m for m in migrations if m.version not in done]
    latest = max(applied, default="")
    late = [m for m in todo if m.version < latest]
    if late and not include_all:
        names = ", ".join(m.path.name for m in late)
        raise MigrationError(
            f"{names} would be inserted before the last applied migration {latest};"
            " rerun with --include-all to apply them anyway"
        )
    return todo


def migrate(dsn: str, supabase_dir: Path | None = None, *, include_all: bool = False) -> MigrationReport:
    """Bring the database at `dsn` up to date. Safe to run concurrently and repeatedly."""
    supabase_dir = supabase_dir or SUPABASE_DIR
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(_Q["lock"], {"key": MIGRATION_LOCK_KEY})
        try:
            stand_ins = _apply_stand_ins(conn, supabase_dir / "local")
            role = _migrating_role(conn)
            pgmq_installed = _ensure_pgmq(conn, supabase_dir / "local", role)
            migrations = discover_migrations(supabase_dir / "migrations")
            applied = _apply_migrations(conn, migrations, role, include_all=include_all)
            buckets = buckets_from_config(tomllib.loads((supabase_dir / "config.toml").read_text()))
            _upsert_buckets(conn, buckets)
        finally:
            conn.execute(_Q["unlock"], {"key": MIGRATION_LOCK_KEY})
    return MigrationReport(stand_ins, pgmq_installed, applied, [b.id for b in buckets])


def policy_grant_target(statement: str) -> str | None:
    """The table a CREATE/ALTER/DROP POLICY statement is on, when supautils would run it for `postgres`."""
    comments = _LEADING_COMMENTS.match(statement)
    match = _POLICY_COMMAND.match(statement, comments.end() if comments else 0)
    if match is None:
        return None
    table = re.sub(r"\s+", "", match["table"]).replace('"', "").lower()
    return table if table in POLICY_GRANTS else None


def _apply_stand_ins(conn: Conn, local_dir: Path) -> bool:
    """Create what Supabase itself provides, unless this database is a Supabase one; True when they were new.

    A database whose stand-ins an earlier run made gets them again (every statement is idempotent), so what
    was added to them since (Storage's list function, say) reaches an existing embedded data directory.
    """
    provided = _flag(conn, "has_auth_users", "present") and _flag(conn, "has_supabase_roles", "present")
    if provided and not _flag(conn, "has_stand_ins", "present"):
        return False
    for path in sorted(local_dir.glob("*.sql")):
        with conn.transaction():
            conn.execute(path.read_text(encoding="utf-8"))  # trusted repo file
    return not provided


def _migrating_role(conn: Conn) -> str | None:
    row = conn.execute(_Q["migrating_role"]).fetchone()
    return None if row is None else str(row["rolname"])


def _ensure_pgmq(conn: Conn, local_dir: Path, role: str | None) -> str | None:
    """Install pgmq when missing: the extension where the server has it, else the pgmq package's SQL.

    Under the stand-ins its objects then pass to the migrating role, as Supabase's after-create script
    gives them to `postgres`.
    """
    installed = None
    if not _flag(conn, "has_pgmq", "present"):
        with conn.transaction():
            if _flag(conn, "pgmq_available", "available"):
                conn.execute(_Q["create_extension_pgmq"])
                installed = "extension"
            else:
                conn.execute(files("pgmq").joinpath("sql", "pgmq.sql").read_text(encoding="utf-8"))
                installed = "sql"
    if role is not None:
        with conn.transaction():
            conn.execute((local_dir / "pgmq" / "after-create.sql").read_text(encoding="utf-8"))  # trusted repo file
    return installed


def _apply_migrations(conn: Conn, migrations: list[Migration], role: str | None, *, include_all: bool) -> list[str]:
    with conn.transaction():
        for name in ("create_history_schema", "create_history_table", "add_history_statements", "add_history_name"):
            conn.execute(_Q[name])
    applied_versions = [str(r["version"]) for r in conn.execute(_Q["applied_versions"])]
    applied = []
    for migration in pending_migrations(migrations, applied_versions, include_all=include_all):
        statements = migration.statements()
        try:
            with conn.transaction():
                conn.execute(_Q["set_lock_timeout"])
                _run_statements(conn, statements, role)
                conn.execute(
                    _Q["insert_version"],
                    {"version": migration.version, "name": migration.name, "statements": statements},
                )
        except psycopg.Error as exc:
            raise MigrationError(f"{migration.path.name} failed: {exc}") from exc
        log.info("applied migration %s_%s", migration.version, migration.name)
        applied.append(f"{migration.version}_{migration.name}")
    return applied


def _run_statements(conn: Conn, statements: list[str], role: str | None) -> None:
    """Run each statement alone, through the extended protocol as the CLI does, so a piece holding two
    statements fails here as it would there."""
    cursor = conn.cursor(binary=True)  # binary results force the extended protocol
    for statement in statements:
        as_superuser = role is not None and policy_grant_target(statement) is not None
        if as_superuser:
            conn.execute(_Q["set_role"], {"role": "none"})
        elif role is not None:
            conn.execute(_Q["set_role"], {"role": role})
        cursor.execute(statement)  # trusted repo file
    if role is not None:
        conn.execute(_Q["set_role"], {"role": "none"})


def _flag(conn: Conn, query: str, column: str) -> bool:
    row = conn.execute(_Q[query]).fetchone()
    return bool(row and row[column])


def _upsert_buckets(conn: Conn, buckets: list[BucketConfig]) -> None:
    with conn.transaction():
        for bucket in buckets:
            conn.execute(_Q["upsert_bucket"], asdict(bucket))  # its fields are the query's parameters
