"""deploy/compose/init.py, as init.sh runs it in the image: it writes the env file and the signing certificate into
the mounted directory, and its messages name that directory as the host does, not the container's `/out`; init.sh
itself stops at once, saying the fix, on a host whose containers may not set their limits."""

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


def init_sh(tmp_path: Path, engine_says: str, engine_exits: int) -> subprocess.CompletedProcess[str]:
    """init.sh with a stand-in container engine that answers every command with `engine_says` on its standard
    error and `engine_exits` (what a host's podman answers, without starting anything)."""
    engine = tmp_path / "engine"
    engine.write_text(f"#!/bin/sh\necho '{engine_says}' >&2\nexit {engine_exits}\n")
    engine.chmod(0o755)
    return subprocess.run(
        ["bash", str(REPO / "deploy" / "compose" / "init.sh")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "CONTAINER": str(engine), "VOICEGATE_COMPOSE_DIR": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_host_that_refuses_containers_their_rlimits_is_told_the_fix_before_anything_is_written(
    tmp_path: Path,
) -> None:
    refusal = "Error: crun: setrlimit `RLIMIT_NOFILE`: Operation not permitted: OCI permission denied"
    done = init_sh(tmp_path, refusal, 126)

    assert done.returncode == 1
    assert done.stderr.splitlines()[:2] == [
        "init.sh: this host does not let a container raise its open-file limit:",
        f"  {refusal}",
    ]
    limit = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True, check=True).stdout.strip()
    assert "  default_ulimits = [" in done.stderr
    assert f':{limit}", "nproc=4096:4096"]' in done.stderr
    assert '  runtime = "runc"' in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_engine_that_cannot_run_the_image_for_another_reason_says_its_own_words(tmp_path: Path) -> None:
    done = init_sh(tmp_path, "Error: localhost/voicegate:latest: image not known", 125)

    assert done.returncode == 1
    assert "cannot run localhost/voicegate:latest" in done.stderr
    assert "Error: localhost/voicegate:latest: image not known" in done.stderr
    assert "open-file limit" not in done.stderr
    assert not (tmp_path / "out").exists()
