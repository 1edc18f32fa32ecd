"""Migration files follow the Supabase CLI's naming and are applied in version order."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backend.db.migrate import RENUMBERED, SUPABASE_DIR, MigrationError, discover_migrations

NAME = re.compile(r"^\d{14}_[a-z0-9_]+\.sql$")
FILES = sorted(p.name for p in (SUPABASE_DIR / "migrations").iterdir())
REPO = Path(__file__).resolve().parents[2]


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


def added_at() -> dict[str, str]:
    """When each migration file first appeared in the history (UTC, as YYYYMMDDHHMMSS): the committer time
    of the earliest commit that added it under its name, merges included (a file can arrive by one)."""
    log = subprocess.run(
        ["git", "log", "-m", "--no-renames", "--diff-filter=A", "--name-only", "--format=@%ct",
         "--", "supabase/migrations"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert log.returncode == 0, f"this test reads the git history of supabase/migrations: {log.stderr.strip()}"
    added: dict[str, str] = {}
    when = ""
    for line in log.stdout.splitlines():
        if line.startswith("@"):
            when = datetime.fromtimestamp(int(line[1:]), UTC).strftime("%Y%m%d%H%M%S")
        elif line.strip():
            name = Path(line).name
            added[name] = min(added.get(name, when), when)
    return added


def test_no_migration_is_versioned_later_than_the_commit_that_added_it() -> None:
    # A version ahead of its commit sorts after migrations made later with `supabase migration new`, which
    # `supabase db push` then refuses as "to be inserted before the last migration on remote database". In a
    # shallow clone the oldest commit held stands for the ones cut off: it is later than they are, so the
    # check is weaker there but still made; a file not committed yet is checked against now.
    added = added_at()
    assert added, "git found no commit adding a migration: is this a clone of the repository?"
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    ahead = {
        m.path.name: added.get(m.path.name, now)
        for m in discover_migrations()
        if m.version > added.get(m.path.name, now)
    }
    assert not ahead, f"versioned later than the commit that added them (file: commit time): {ahead}"


def test_renumbered_versions_keep_their_order_and_name_files_that_exist() -> None:
    old = list(RENUMBERED)
    new = [version for versions_now in RENUMBERED.values() for version in versions_now]
    # The files there were when they were renumbered: later ones have versions of their own.
    versions = {m.version for m in discover_migrations() if m.version <= max(new)}
    assert not {m.version for m in discover_migrations()} & set(old), "an old version is still a file's"
    assert set(new) <= versions
    # The files in the order of their versions before, each renumbered one where its old version was.
    before = sorted((versions - set(new)) | set(old))
    in_old_order = [version for v in before for version in RENUMBERED.get(v, (v,))]
    assert in_old_order == sorted(versions), "the renumbering changed the order migrations apply in"
