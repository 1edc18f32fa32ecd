"""Migration files follow the Supabase CLI's naming and are applied in version order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.db.migrate import SUPABASE_DIR, MigrationError, discover_migrations

NAME = re.compile(r"^\d{14}_[a-z0-9_]+\.sql$")
FILES = sorted(p.name for p in (SUPABASE_DIR / "migrations").iterdir())


@pytest.mark.parametrize("name", FILES)
def test_migration_file_is_named_like_the_supabase_cli_names_them(name: str) -> None:
    assert NAME.match(name), name


def test_migrations_are_discovered_in_strictly_increasing_version_order() -> None:
    versions = [m.version for m in discover_migrations()]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions) == len(FILES)


@pytest.mark.parametrize("bad", ["2026_init.sql", "20261121000100_Init.sql", "20261121000100-init.sql"])
def test_a_misnamed_migration_is_an_error_not_a_skip(tmp_path: Path, bad: str) -> None:
    (tmp_path / "20261121000000_ok.sql").write_text("select 1;")
    (tmp_path / bad).write_text("select 1;")
    with pytest.raises(MigrationError, match="does not match"):
        discover_migrations(tmp_path)


def test_two_migrations_with_one_version_are_refused(tmp_path: Path) -> None:
    (tmp_path / "20261121000000_a.sql").write_text("select 1;")
    (tmp_path / "20261121000000_b.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="share a version"):
        discover_migrations(tmp_path)


def test_migrations_create_nothing_supabase_owns() -> None:
    owned = re.compile(
        r"create\s+(table|schema|function|or replace function)\s+(if not exists\s+)?(auth|storage)\.", re.I
    )
    for migration in discover_migrations():
        assert not owned.search(migration.text()), migration.path.name
