"""Apply the Supabase stand-ins, pgmq and `supabase/migrations` to a database, once each.

Migrations run as `supabase db push` runs them (supabase/cli pkg/migration): every file is cut into
statements (backend/db/statements.py), each statement runs on its own through the extended protocol
inside one transaction per file with `lock_timeout = '4s'`, and the version, name and statements
are recorded in `supabase_migrations.schema_migrations`, so a database migrated here and one migrated
by the CLI agree on what is applied. A file older than the latest applied version is refused unless
`include_all` (the CLI's `--include-all`).

A statement PostgreSQL refuses inside a transaction block (`CREATE INDEX CONCURRENTLY` and the like)
is run on its own, after the statements before it are committed, as the CLI does since 2.109
(supabase/cli#5671); the version is recorded with the file's last statements. So a file that fails
after such a statement leaves what came before it applied, unrecorded: its statements are written to
be run again (a concurrent build that failed leaves an invalid index, to drop before the rerun).

Applied files are compared by version only, as the CLI compares them: an applied file is never run
again nor checked against its text. A file rewritten after it was applied must leave the schema as
the old text did (tests/integration/test_migration_history.py compares the two); the versions of
files renumbered since are brought along by `RENUMBERED` before anything is compared.

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
# SQLSTATE 25001 inside a transaction block; the CLI's list (supabase/cli pkg/migration/file.go
# `isPipelineIncompatible`, supabase/cli#5156).
_OUTSIDE_TRANSACTION = re.compile(
    r"(?:create\s+(?:unique\s+)?index\s+concurrently|drop\s+index\s+concurrently|reindex\b.*\sconcurrently"
    r"|vacuum|alter\s+system|cluster)\b",
    re.IGNORECASE | re.DOTALL,
)
# The migrations once versioned days ahead of the commits that added them, renumbered to those
# commits' times (a migration made with `supabase migration new` sorted before them, and `db push` refused
# it). Each old version maps to its file's new version and, where the file's constraint validations and
# concurrent index moved to a `_validate` file of their own, that file's version: a database that applied
# the old file ran those steps with it.
RENUMBERED: dict[str, tuple[str, ...]] = {
    "20261121001000": ("20261121073713", "20261121073714"),
    "20261122000200": ("20261122102917", "20261122102918"),
    "20261123001700": ("20261122103238",),
    "20261123001800": ("20261122104910", "20261122104911"),
    "20261123002000": ("20261122104912",),
    "20261124000100": ("20261122115131",),
    "20261124000200": ("20261122125901",),
    "20261124000300": ("20261122130224",),
    "20261125000100": ("20261122203140",),
    "20261125000200": ("20261123103504",),
    "20261125000300": ("20261123103505", "20261123103506"),
    "20261125000700": ("20261123171731",),
    "20261125000800": ("20261123171732", "20261123171733"),
    "20261125000900": ("20261123175011",),
}


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


def runs_outside_a_transaction(statement: str) -> bool:
    """Whether PostgreSQL refuses `statement` inside a transaction block, so it must run on its own."""
    comments = _LEADING_COMMENTS.match(statement)
    return _OUTSIDE_TRANSACTION.match(statement, comments.end() if comments else 0) is not None


#: The first line of a stand-in file that runs again on every migrate of a database voicegate set up before.
EVERY_MIGRATE = "-- voicegate: every migrate"


def _apply_stand_ins(conn: Conn, local_dir: Path) -> bool:
    """Create what Supabase itself provides, unless this database is a Supabase one; True when they were new.

    On a database whose stand-ins an earlier run made, only the files that begin with `EVERY_MIGRATE` run again
    (functions created or replaced, and their grants), so what was added to the stand-ins since (Storage's list
    function, say) reaches an existing data directory. The others are not re-run: their default privileges and
    grants are Supabase's, which the migrations narrow afterwards, and running them again would widen them.
    """
    provided = _flag(conn, "has_auth_users", "present") and _flag(conn, "has_supabase_roles", "present")
    if provided and not _flag(conn, "has_stand_ins", "present"):
        return False
    for path in sorted(local_dir.glob("*.sql")):
        text = path.read_text(encoding="utf-8")  # trusted repo file
        if provided and not text.startswith(EVERY_MIGRATE):
            continue
        with conn.transaction():
            conn.execute(text)
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
    _bring_renumbered_along(conn, migrations)
    applied_versions = [str(r["version"]) for r in conn.execute(_Q["applied_versions"])]
    applied = []
    try:
        for migration in pending_migrations(migrations, applied_versions, include_all=include_all):
            _apply_migration(conn, migration, role)
            log.debug("applied migration %s_%s", migration.version, migration.name)
            applied.append(f"{migration.version}_{migration.name}")
    finally:
        conn.execute(_Q["reset_session"])
    return applied


def _bring_renumbered_along(conn: Conn, migrations: Sequence[Migration]) -> None:
    """Record a database's old versions under their new ones (`RENUMBERED`); nothing runs again.

    The new version of the renamed file takes over the old row as it is, its name and statements being
    what ran; a `_validate` file split off it is recorded with no statements, its steps having run within
    the old file.
    """
    names = {m.version: m.name for m in migrations}
    with conn.transaction():
        for old, (new, *split_off) in RENUMBERED.items():
            row = conn.execute(_Q["take_version"], {"version": old}).fetchone()
            if row is None:
                continue
            conn.execute(_Q["record_version"], {"version": new, "name": row["name"], "statements": row["statements"]})
            for version in split_off:
                if version not in names:
                    raise MigrationError(f"applied migration {old} was renumbered, but {version}_*.sql is missing")
                conn.execute(_Q["record_version"], {"version": version, "name": names[version], "statements": []})
            log.info("migration %s is now %s", old, ", ".join((new, *split_off)))


def _apply_migration(conn: Conn, migration: Migration, role: str | None) -> None:
    """Run one file as the CLI does: its statements in one transaction with its version, except that one
    refused inside a transaction block commits those before it and runs on its own."""
    statements = migration.statements()
    record = {"version": migration.version, "name": migration.name, "statements": statements}
    pending: list[str] = []
    try:
        conn.execute(_Q["reset_session"])  # as the CLI does before each file: no setting leaks from the last
        conn.execute(_Q["set_lock_timeout"])
        for statement in statements:
            if runs_outside_a_transaction(statement):
                if pending:
                    with conn.transaction():
                        _run_statements(conn, pending, role)
                pending = []
                _run_statements(conn, [statement], role, local=False)
            else:
                pending.append(statement)
        with conn.transaction():
            _run_statements(conn, pending, role)
            conn.execute(_Q["insert_version"], record)
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.path.name} failed: {exc}") from exc


def _run_statements(conn: Conn, statements: list[str], role: str | None, *, local: bool = True) -> None:
    """Run each statement alone, through the extended protocol as the CLI does, so a piece holding two
    statements fails here as it would there. The role is set for the transaction (`local`), or for the
    session around a statement that runs outside one."""
    cursor = conn.cursor(binary=True)  # binary results force the extended protocol
    for statement in statements:
        as_superuser = role is not None and policy_grant_target(statement) is not None
        if as_superuser:
            conn.execute(_Q["set_role"], {"role": "none", "local": local})
        elif role is not None:
            conn.execute(_Q["set_role"], {"role": role, "local": local})
        cursor.execute(statement)  # trusted repo file
    if role is not None:
        conn.execute(_Q["set_role"], {"role": "none", "local": local})


def _flag(conn: Conn, query: str, column: str) -> bool:
    row = conn.execute(_Q[query]).fetchone()
    return bool(row and row[column])


def _upsert_buckets(conn: Conn, buckets: list[BucketConfig]) -> None:
    with conn.transaction():
        for bucket in buckets:
            conn.execute(_Q["upsert_bucket"], asdict(bucket))  # its fields are the query's parameters
