"""What the embedded data directory holds is its owner's alone, whatever the umask: directories made
0700, files 0600, a file made once even by processes racing to make it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from standins.private_files import (
    create_private_file_once,
    make_private_dirs,
    others_may_read,
    private_opener,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask-000", "umask-022", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def test_directories_it_makes_are_0700_and_existing_ones_keep_their_mode(tmp_path: Path, umask: int) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    existing.chmod(0o755)
    make_private_dirs(existing / "a" / "b" / "c")
    assert [mode(existing / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3
    assert mode(existing) == 0o755
    make_private_dirs(existing / "a" / "b")  # already there: nothing to do
    assert mode(existing / "a" / "b") == 0o700


def test_files_opened_through_it_are_0600(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "recording.wav"
    with open(path, "wb", opener=private_opener) as out:
        out.write(b"RIFF")
    assert mode(path) == 0o600
    assert others_may_read(path) is None
    path.chmod(0o644)
    assert others_may_read(path) == 0o644


def test_a_file_made_once_is_0600_and_keeps_its_first_content(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "data" / "secret"
    create_private_file_once(path, "first\n")
    create_private_file_once(path, "second\n")
    assert path.read_text() == "first\n"
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)
    assert [p.name for p in path.parent.iterdir()] == ["secret"], "no temporary file is left behind"
