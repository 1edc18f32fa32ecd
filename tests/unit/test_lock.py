"""The lock files: made from pyproject.toml's current dependencies, and the offline check that says when
they are not (it runs first in `make up` and `make test`, before any virtualenv exists)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import lock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """pyproject.toml and the locks, copied."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / lock.LOCK_DIR, tmp_path / lock.LOCK_DIR)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def check(root: Path) -> subprocess.CompletedProcess[str]:
    """`make lockcheck`, on ``root``: no site-packages (-S), so only the standard library is importable."""
    return subprocess.run(
        [sys.executable, "-S", "-m", "scripts.lock", "--check", "--root", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_locks_are_made_from_the_current_pyproject() -> None:
    assert lock.stale(ROOT) == []


def test_every_requirement_is_pinned_with_hashes() -> None:
    for name in lock.LOCKS:
        text = (ROOT / lock.LOCK_DIR / name).read_text(encoding="utf-8")
        requirements = [entry for entry in re.split(r"\n(?=\S)", text) if not entry.startswith("#")]
        assert requirements, name
        for entry in requirements:
            assert re.match(r"[A-Za-z0-9][\w.-]*==\S+ \\\n", entry), entry
            assert "--hash=sha256:" in entry, entry
        # Nothing of the machine the locks were made on: no index, no file path.
        assert not re.search(r"file://|/opt/|/tmp/|/home/|/root/|--index-url|--find-links", text), name


def test_a_changed_dependency_makes_every_lock_stale(checkout: Path) -> None:
    assert check(checkout).returncode == 0

    edit(checkout / "pyproject.toml", '"rich==15.0.0"', '"rich==15.0.1"')

    older = [f"{name} is older than pyproject.toml's dependencies" for name in lock.LOCKS]
    assert lock.stale(checkout) == older
    done = check(checkout)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("The lock files in requirements/ are out of date (build.lock is older")
    assert done.stderr.endswith(": run `make lock`\n")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"setuptools>=77"', '"setuptools>=78"'),
        ('requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
        ('"pytest>=9.0,<10"', '"pytest>=9.1,<10"'),
    ],
)
def test_build_requirements_python_and_extras_count_too(checkout: Path, old: str, new: str) -> None:
    edit(checkout / "pyproject.toml", old, new)

    assert len(lock.stale(checkout)) == len(lock.LOCKS)


def test_comments_and_tool_settings_need_no_new_lock(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    edit(pyproject, '"rich==15.0.0",  # operator scripts', '"rich==15.0.0",  # the operator scripts')
    edit(pyproject, "line-length = 120", "line-length = 100")

    assert lock.stale(checkout) == []


def test_a_missing_lock_is_named(checkout: Path) -> None:
    (checkout / "requirements" / "build.lock").unlink()

    assert lock.stale(checkout) == ["build.lock is missing"]
    assert "make lock" in check(checkout).stderr


def test_dev_and_runtime_pin_the_same_versions(checkout: Path) -> None:
    version = lock.pins(checkout / "requirements" / "runtime.lock")["numpy"]
    edit(checkout / "requirements" / "dev.lock", f"\nnumpy=={version} ", "\nnumpy==1.0.0 ")

    assert lock.stale(checkout) == [f"dev.lock pins numpy 1.0.0, runtime.lock {version}"]
