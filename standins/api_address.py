"""Where the `voicegate up` of a data directory serves its API, and so the Storage stand-in: `up` records
it in `<data dir>/api.json` while it runs, and a `voicegate worker` started beside it reads it there, as
`voicegate token` finds the embedded Postgres from its `postmaster.pid`, whatever port `up` was given."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import msgspec

from standins.private_files import private_opener

#: The file in the data directory that names the running `up`'s process and address.
ADDRESS_FILE = "api.json"


class ApiAddress(msgspec.Struct, frozen=True):
    """The running `up`'s process id and its API's base URL (`Settings.api_base_url`)."""

    pid: int
    url: str


@contextlib.contextmanager
def published(data_dir: Path, url: str) -> Iterator[None]:
    """Record this process as serving the API of `data_dir` at `url` for as long as the block runs.

    Written atomically (a reader never sees half a file) and removed at the end unless another `up` has
    recorded itself meanwhile: the file names the one that started last.
    """
    path = data_dir / ADDRESS_FILE
    temp = path.with_name(f".{ADDRESS_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        with open(temp, "xb", opener=private_opener) as handle:
            handle.write(msgspec.json.encode(ApiAddress(pid=os.getpid(), url=url)))
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    try:
        yield
    finally:
        if _read(path) == ApiAddress(pid=os.getpid(), url=url):
            path.unlink(missing_ok=True)


def running_api_url(data_dir: Path) -> str | None:
    """The base URL of the API the `up` of `data_dir` serves, or None when no `up` runs for it (no file,
    or the process that wrote it is gone: an `up` killed with SIGKILL leaves its file behind)."""
    address = running_up(data_dir)
    return address.url if address is not None else None


def running_up(data_dir: Path) -> ApiAddress | None:
    """The `up` of `data_dir` that runs now (its process id and address), or None."""
    address = _read(data_dir / ADDRESS_FILE)
    return address if address is not None and alive(address.pid) else None


def _read(path: Path) -> ApiAddress | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=ApiAddress)
    except (OSError, msgspec.DecodeError):
        return None


def alive(pid: int) -> bool:
    """Whether process `pid` runs: it exists and has not exited (an exited process its parent has not reaped yet,
    a zombie, serves nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to tell: it exists
    return state != "Z"
