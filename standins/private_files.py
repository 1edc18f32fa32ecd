"""Files and directories of the embedded data directory that only their owner may use: directories 0700,
files 0600, whatever the process's umask. The data directory holds the JWT secret, the database
password and users' voice recordings; a umask decides nothing here because a permissive one (0000 in
some containers and service managers) would otherwise hand them to every local user.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents, each one it creates 0700 (existing ones keep their mode)."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another request, which sets the same mode
        directory.chmod(DIR_MODE)  # mkdir's mode passes through the umask


def private_opener(path: str, flags: int) -> int:
    """An `opener` for `open()` whose file is 0600, the mode set on the open descriptor."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def create_private_file_once(path: Path, text: str) -> None:
    """Write `text` to `path` (0600) unless the file exists.

    Creation is atomic: the text goes to a private temporary file that is hard-linked into place, so two
    processes starting together agree on one content and nobody reads a half-written file.
    """
    if path.exists():
        return
    make_private_dirs(path.parent)
    temp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = private_opener(str(temp), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race; its file is the one
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def others_may_read(path: Path) -> int | None:
    """The file's mode when its group or other users have any access to it, else None."""
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode & 0o077 else None
