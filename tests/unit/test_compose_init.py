"""deploy/compose/init.py, as init.sh runs it in the image: it writes the env file and the signing certificate into
the mounted directory, and its messages name that directory as the host does, not the container's `/out`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def init(out: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "compose" / "init.py"), str(out), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.splitlines()


def test_the_messages_name_the_directory_as_the_host_does(tmp_path: Path) -> None:
    out = tmp_path / "mounted"
    out.mkdir()
    assert init(out, "--shown-as", ".compose") == [
        ".compose/env: written",
        ".compose/c2pa: development signing certificate written",
    ]
    assert (out / "env").read_text().count("\n") == 9
    assert init(out, "--shown-as", ".compose") == [".compose/env: kept", ".compose/c2pa: kept"]
    assert init(out) == [f"{out}/env: kept", f"{out}/c2pa: kept"]
