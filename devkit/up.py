"""A real `voicegate up` as a subprocess on free ports, for the end-to-end tests and the benchmarks: start it,
wait for it, mint a dev token against it with `voicegate token`, and start `voicegate worker` beside it."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
import psycopg

from backend.db.migrate import migrate
from standins.postgres import EmbeddedPostgres, for_data_dir, free_port

REPO = Path(__file__).resolve().parents[1]


@dataclass
class DataTemplate:
    """A data directory `start_up` copies for each new one (`make_data_template`); None: each starts empty."""

    path: Path | None = None


#: The end-to-end tests' template (tests/e2e/conftest.py): a test about a first start asks for `fresh`.
DATA_TEMPLATE = DataTemplate()


def make_data_template(root: Path) -> Path:
    """`root/data` as a first `voicegate up` leaves it (its cluster, made and migrated as `up` does, and the
    password file), stopped. Durability is traded for speed as in the tests' other clusters, but commits still
    reach the kernel at once (no fsync and no full-page writes; commits stay synchronous): a killed postmaster,
    which tests do kill, loses nothing committed."""
    data = root / "data"
    pg = for_data_dir(data, free_port())
    pg.ensure_running_once_free()
    try:
        migrate(pg.dsn)
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
    finally:
        pg.stop()
    return data


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    pg: EmbeddedPostgres
    log: Path


def wait_for(
    predicate: object, seconds: float, what: str, process: subprocess.Popen[bytes] | Running | None = None
) -> None:
    """Poll `predicate` until it is true; fail after `seconds` or when `process` dies (with the end of its
    log, for a `Running`: a CI failure must say why it exited)."""
    deadline = time.monotonic() + seconds
    popen = process.process if isinstance(process, Running) else process
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            said = ""
            if isinstance(process, Running) and process.log.exists():
                said = "; its log ends:\n" + "\n".join(process.log.read_text(errors="replace").splitlines()[-25:])
            raise AssertionError(f"voicegate exited with {popen.returncode} while waiting for {what}{said}")
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@cache
def tls_context() -> ssl.SSLContext:
    """The default TLS context, made once: httpx makes one for every client it builds, reading and parsing the
    CA bundle (about 55 ms of CPU), and a poll that built one per call burned most of a core while `up` started."""
    return ssl.create_default_context()


def readyz(base_url: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2, verify=tls_context())
    except httpx.TransportError:
        return None


def is_ready(base_url: str) -> bool:
    response = readyz(base_url)
    return response is not None and response.status_code == 200


def start_up(
    tmp_path: Path,
    pg_port: int | None = None,
    *extra: str,
    umask: int = -1,
    cwd: Path = REPO,
    settings: Mapping[str, str] | None = None,
    fresh: bool = False,
) -> Running:
    """`voicegate up` on `tmp_path/data` (with `umask`, when one is given), from the checkout at `cwd`, with the
    environment's `settings` besides (e.g. `VOICEGATE_CONSENT`). A data directory that does not exist yet is a
    copy of `DATA_TEMPLATE`'s when there is one, unless `fresh`: then `up` makes it, as on a user's first start."""
    port, pg_port = free_port(), pg_port or free_port()
    data = tmp_path / "data"
    if not fresh and DATA_TEMPLATE.path is not None and not data.exists():
        # `cp -a`: the cluster's files keep their owner, the server's own OS user when we are root.
        subprocess.run(["cp", "-a", str(DATA_TEMPLATE.path), str(data)], check=True)  # noqa: S607 - coreutils
    env = {
        **os.environ,
        "VOICEGATE_LOG_LEVEL": "WARNING",
        **(settings or {}),
        "VOICEGATE_DATA_DIR": str(data),
        "VOICEGATE_PORT": str(port),
        "VOICEGATE_PG_PORT": str(pg_port),
    }
    env.pop("DATABASE_URL", None)
    log = tmp_path / "voicegate.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "voicegate.cli", "up", *extra],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            umask=umask,
        )
    pg = for_data_dir(data, pg_port)
    return Running(process, f"http://127.0.0.1:{port}", pg, log)


@contextmanager
def running_up(
    root: Path,
    pg_port: int | None = None,
    *extra: str,
    umask: int = -1,
    settings: Mapping[str, str] | None = None,
    ready_s: float = 120,
    fresh: bool = False,
    cwd: Path = REPO,
) -> Iterator[Running]:
    """`voicegate up` with its data under `root` (see `start_up`: from the checkout at `cwd`), once `/readyz`
    answers 200 (within `ready_s`); on exit it is stopped, its Postgres too, and `root` removed."""
    up = start_up(root, pg_port, *extra, umask=umask, cwd=cwd, settings=settings, fresh=fresh)
    try:
        wait_for(lambda: is_ready(up.base_url), ready_s, "/readyz 200", up)
        yield up
    finally:
        if up.process.poll() is None:
            up.process.terminate()
            up.process.wait(timeout=30)
        up.pg.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def dev_token(running: Running, user: str) -> str:
    """A token from `voicegate token`, run against the same embedded stack."""
    env = {
        **os.environ,
        "VOICEGATE_DATA_DIR": str(running.pg.data_dir.parent),
        "VOICEGATE_PG_PORT": str(running.pg.port),
    }
    minted = subprocess.run(
        [sys.executable, "-m", "voicegate.cli", "token", "--user", user],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    return minted.stdout.decode().strip()


def start_worker(data_dir: Path, log: Path, *, cwd: Path = REPO, **extra: str) -> subprocess.Popen[bytes]:
    """`voicegate worker` as a user starts it beside `voicegate up` on `data_dir`, from the checkout at `cwd`: no
    DATABASE_URL, no API address (`extra` adds variables), its output in `log`."""
    env = {key: value for key, value in os.environ.items() if key not in _ADDRESSES}
    env |= {"VOICEGATE_DATA_DIR": str(data_dir), "VOICEGATE_LOG_LEVEL": "WARNING", **extra}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "voicegate.cli", "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd
        )


#: What would tell a worker where the database and the API are, which one beside `up` must find by itself.
_ADDRESSES = ("DATABASE_URL", "SUPABASE_URL", "VOICEGATE_HOST", "VOICEGATE_PORT", "VOICEGATE_PUBLIC_URL")


def api_children(pid: int) -> list[int]:
    """The other API processes `voicegate up` (process `pid`) serves from (VOICEGATE_API_PROCESSES): its
    `voicegate serve` children."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended since the listing
        if parent == pid and b"voicegate.cli" in command and b"serve" in command:
            found.append(int(proc.name))
    return found
