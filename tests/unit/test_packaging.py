"""An installed voicegate (a wheel, as the container image installs it) carries every file `voicegate migrate`
reads: the migrations, the Supabase stand-ins and `config.toml`'s buckets, as package data."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

from backend.db.migrate import SUPABASE_DIR, discover_migrations
from devkit.layers import DEV_AIDS

REPO = Path(__file__).resolve().parents[2]


def test_what_migrate_reads_is_package_data_of_the_repositorys_supabase_directory() -> None:
    # The migrator reads the repository's own `supabase/` (what the Supabase CLI pushes), through a path
    # inside the `backend` package, so that a wheel holds it too.
    assert SUPABASE_DIR.resolve() == (REPO / "supabase").resolve()
    assert SUPABASE_DIR.is_relative_to(REPO / "backend")
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = setuptools["packages"]["find"]
    # Directories without __init__.py are found as namespace packages (pyproject's default).
    assert find.get("namespaces", True)
    assert "backend*" in find["include"]
    package_data: dict[str, list[str]] = setuptools["package-data"]
    # supabase/schema.sql is the migrations' result for reviewers (tools/schema.py): nothing reads it, none ships.
    assert setuptools["exclude-package-data"]["backend.db.supabase"] == ["schema.sql"]
    read = [p for p in SUPABASE_DIR.rglob("*") if p.is_file() and p.name != "schema.sql"]
    assert SUPABASE_DIR / "config.toml" in read
    assert {m.path for m in discover_migrations(SUPABASE_DIR / "migrations")} <= set(read)
    for path in read:
        package = ".".join(path.parent.relative_to(REPO).parts)
        patterns = [*package_data["*"], *package_data.get(package, [])]
        assert any(fnmatch(path.name, pattern) for pattern in patterns), f"{path} is not package data of {package}"


def test_the_development_aids_are_in_neither_the_wheel_nor_the_image() -> None:
    """The tests and the benchmarks import them, `voicegate up --fake-providers` runs the provider fakes as a
    program of their own; none of them ships."""
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = (REPO / "Containerfile").read_text()
    for package in DEV_AIDS:
        assert (REPO / package / "__init__.py").is_file()
        assert not [pattern for pattern in include if fnmatch(package, pattern)], f"the wheel would hold {package}"
        assert f"COPY {package}/" not in copied, f"the image would hold {package}"
