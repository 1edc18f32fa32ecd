"""20261126042000_voice_names_unique on a database that already holds voices of one owner with one name: it does
not fail; the oldest of each keeps its name and every later one takes the first free `name (2)`, `name (3)`…
(a suffix that fits in 200 characters), leaving deleted voices and other owners' voices as they were, and from
then on the index refuses a duplicate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backend.db.migrate import discover_migrations, migrate
from devkit.db import create_user
from tests.conftest import PgServer

REPO_SUPABASE = Path(__file__).resolve().parents[2] / "supabase"
UNIQUE_NAMES = "20261126042000"


@pytest.fixture
def before_unique_names(pg_server: PgServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A database migrated up to the migration before UNIQUE_NAMES, and the project that did it."""
    project = tmp_path / "supabase"
    (project / "migrations").mkdir(parents=True)
    (project / "local").symlink_to(REPO_SUPABASE / "local")
    (project / "config.toml").write_text((REPO_SUPABASE / "config.toml").read_text())
    for migration in discover_migrations():
        if migration.version < UNIQUE_NAMES:
            (project / "migrations" / migration.path.name).symlink_to(migration.path)
    pg_server.drop_database("before_unique_names")
    dsn = pg_server.create_database("before_unique_names")
    migrate(dsn, project)
    try:
        yield dsn, project
    finally:
        pg_server.drop_database("before_unique_names")


def test_duplicates_a_deployed_database_holds_are_renamed_and_new_ones_refused(
    before_unique_names: tuple[str, Path],
) -> None:
    dsn, project = before_unique_names
    long = "x" * 200
    with psycopg.connect(dsn, autocommit=True) as conn:
        alice, bob = create_user(conn), create_user(conn)
        rows = [  # owner, name, minutes ago, deleted
            (alice, "Ada (2)", 10, False),
            (alice, "Ada", 9, False),
            (alice, " ada", 8, False),
            (alice, "ADA ", 7, False),
            (alice, "Ada", 6, True),
            (alice, long, 5, False),
            (alice, long.upper(), 4, False),
            (bob, "Ada", 3, False),
        ]
        for owner, name, ago, deleted in rows:
            conn.execute(
                "insert into voices (owner_id, name, created_at, deleted_at)"
                " values (%s, %s, now() - make_interval(mins => %s), case when %s then now() end)",
                (owner, name, ago, deleted),
            )

        for migration in discover_migrations():
            if migration.version >= UNIQUE_NAMES:
                (project / "migrations" / migration.path.name).symlink_to(migration.path)
        assert migrate(dsn, project).applied[0].startswith(UNIQUE_NAMES)

        after = conn.execute("select owner_id, name, deleted_at is not null from voices order by created_at").fetchall()
        assert after == [
            (alice, "Ada (2)", False),
            (alice, "Ada", False),
            (alice, "ada (3)", False),
            (alice, "ADA (4)", False),
            (alice, "Ada", True),
            (alice, long, False),
            (alice, "X" * 196 + " (2)", False),
            (bob, "Ada", False),
        ]
        with pytest.raises(psycopg.errors.UniqueViolation, match="voices_owner_name_uidx"):
            conn.execute("insert into voices (owner_id, name) values (%s, ' aDA ')", (bob,))
