"""The embedded PostgreSQL of a data directory: it asks every client for the password kept in the data
directory (a cluster made by an older voicegate, which trusted every local client, is brought along),
the data directory is its owner's alone, voicegate reaches it over a Unix socket in its cluster's private
directory (over TCP when the socket's path would be too long, or a server an older voicegate started has
none), and a server is adopted only when it is really that data directory's."""

from __future__ import annotations

import grp
import logging
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backend.settings import settings_from_env
from devkit.db import postmaster_pid
from standins.embedded import database_dsn
from standins.postgres import (
    FAST_UNSAFE_SETTINGS,
    PASSFILE,
    SERVER_OS_USER,
    SOCKET_PATH_MAX,
    EmbeddedPostgres,
    PortTaken,
    ServerStillExiting,
    for_data_dir,
    free_port,
)
from tests import conftest
from tests.conftest import server_dir, start_test_server
from tests.support import busy_backend

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A voicegate data directory (its cluster in `pgdata/`); its server is stopped at the end."""
    with server_dir("embedded") as root:
        data = root / "data"
        try:
            yield data
        finally:
            EmbeddedPostgres(data / "pgdata").stop(mode="immediate")


def voicegate_server(data: Path, port: int | None = None) -> EmbeddedPostgres:
    """The data directory's server as `voicegate up` makes it, fsync off for speed."""
    server = for_data_dir(data, port or free_port())
    server.settings = FAST_UNSAFE_SETTINGS
    return server


def refused(server: EmbeddedPostgres, host: str = "127.0.0.1", **credentials: str) -> str | None:
    """Why the server refuses the superuser with these credentials (and no password file) at `host` (an
    address, or its socket's directory), None if it lets them in."""
    try:
        with psycopg.connect(
            host=host,
            port=server.port,
            user="postgres",
            dbname="postgres",
            passfile="/nonexistent/pgpass",
            connect_timeout=5,
            **credentials,  # type: ignore[arg-type]
        ):
            return None
    except psycopg.OperationalError as exc:
        return str(exc)


def over_socket(dsn: str) -> bool:
    """Whether a connection made with `dsn` reaches the server over a Unix socket (it has no server address)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("select inet_server_addr() is null").fetchone()
    return bool(row and row[0])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private_data_dir(data: Path) -> None:
    """0700; as root 0710 for the server's OS user's group, which passes through to the cluster."""
    if os.geteuid() == 0:
        assert (mode(data), grp.getgrgid(data.stat().st_gid).gr_name) == (0o710, SERVER_OS_USER)
    else:
        assert mode(data) == 0o700


def test_a_new_cluster_asks_every_client_for_the_password_kept_in_the_data_directory(data_dir: Path) -> None:
    server = voicegate_server(data_dir)
    old_umask = os.umask(0)  # the most permissive: modes must not come from it
    try:
        assert server.ensure_running()
    finally:
        os.umask(old_umask)
    assert mode(data_dir / PASSFILE) == 0o600
    assert_private_data_dir(data_dir)
    with psycopg.connect(server.dsn, autocommit=True) as conn:  # the DSN handed out names the password file
        assert conn.execute("select current_user").fetchone() == ("postgres",)
    assert "password" in (refused(server) or "")
    assert "password authentication failed" in (refused(server, password="guess") or "")
    assert str(data_dir / PASSFILE) in server.dsn
    assert (data_dir / PASSFILE).read_text().split(":")[-1].strip() not in server.dsn


def test_voicegate_reaches_its_server_over_a_socket_in_the_cluster_directory_that_asks_for_the_password(
    data_dir: Path,
) -> None:
    server = voicegate_server(data_dir)
    server.ensure_running()
    cluster = data_dir / "pgdata"
    assert (server.socket_dir, mode(cluster)) == (cluster, 0o700)
    assert stat.S_ISSOCK((cluster / f".s.PGSQL.{server.port}").stat().st_mode)
    assert over_socket(server.dsn)
    assert "password" in (refused(server, str(cluster)) or "")
    assert "password authentication failed" in (refused(server, str(cluster), password="guess") or "")
    # Every voicegate process finds it so (`serve`, `worker`, `token`, `ops`), whatever port it was told.
    settings = settings_from_env({"VOICEGATE_DATA_DIR": str(data_dir), "VOICEGATE_PG_PORT": str(free_port())})
    assert database_dsn(settings) == server.dsn
    # TCP on the port stays, for psql and the like (with the password file).
    assert not over_socket(server.tcp_dsn_for("postgres"))


def test_a_cluster_too_deep_for_a_socket_is_served_over_tcp_and_the_log_says_why(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="standins.postgres")
    deep = data_dir / ("deep" * 20) / "data"
    server = voicegate_server(deep)
    assert len(os.fsencode(deep / "pgdata" / f".s.PGSQL.{server.port}")) > SOCKET_PATH_MAX
    try:
        assert server.ensure_running()
        assert server.socket_dir is None
        assert not over_socket(server.dsn)
        settings = settings_from_env({"VOICEGATE_DATA_DIR": str(deep), "VOICEGATE_PG_PORT": str(server.port)})
        assert database_dsn(settings) == server.dsn
    finally:
        server.stop(mode="immediate")
    said = [r.getMessage() for r in caplog.records if "listens on 127.0.0.1" in r.getMessage()]
    assert len(said) == 1
    assert f"past the {SOCKET_PATH_MAX} bytes the kernel allows" in said[0]


@pytest.mark.parametrize("left", ["stopped", "running"])
def test_a_trusting_cluster_of_an_older_voicegate_is_brought_along(
    data_dir: Path, left: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="standins.postgres")
    # What `voicegate up` made until now: initdb --auth=trust, no password file, a 0755 data directory, a
    # server on TCP alone.
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    settings = {**FAST_UNSAFE_SETTINGS, "unix_socket_directories": ""}
    older = EmbeddedPostgres(data_dir / "pgdata", port=free_port(), settings=settings)
    older.ensure_running()
    assert refused(older) is None, "the older cluster lets anyone in"
    if left == "stopped":
        older.stop()

    server = voicegate_server(data_dir, older.port)
    assert server.ensure_running() == (left == "stopped")
    # Found running, it is reached over TCP as it was started; started here, over its socket.
    assert over_socket(server.dsn) == (left == "stopped")
    for host in ("127.0.0.1", *([str(server.socket_dir)] if server.socket_dir else [])):
        assert refused(server, host) is not None
        assert "password authentication failed" in (refused(server, host, password="guess") or "")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute("select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = 'postgres'")
        assert row.fetchone() == (True,)
    assert mode(data_dir / PASSFILE) == 0o600
    assert_private_data_dir(data_dir)
    assert "trust" not in (data_dir / "pgdata" / "pg_hba.conf").read_text().replace("# voicegate", "")
    assert [r.getMessage() for r in caplog.records if "trusted every local client" in r.getMessage()] != []
    # Started again, nothing is left to bring along.
    server.stop()
    caplog.clear()
    assert voicegate_server(data_dir, server.port).ensure_running()
    assert not [r for r in caplog.records if "trusted every local client" in r.getMessage()]


def test_another_servers_port_is_not_taken_for_ours(data_dir: Path) -> None:
    with server_dir("other") as other_root:
        other = start_test_server(other_root)  # another data directory's server (it trusts anyone)
        try:
            taken = f"port {other.port} for the embedded PostgreSQL is taken by another PostgreSQL"
            with pytest.raises(PortTaken, match=taken):
                voicegate_server(data_dir, other.port).ensure_running()
        finally:
            other.remove()
    for listening in (True, False):  # bound without listening, it refuses connections but cannot be bound
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            if listening:
                holder.listen()
            port = holder.getsockname()[1]
            taken = f"port {port} for the embedded PostgreSQL is taken by another program; choose another with"
            with pytest.raises(PortTaken, match=taken):
                voicegate_server(data_dir, port).ensure_running()
    assert not (data_dir / "pgdata" / "PG_VERSION").exists(), "nothing was made for a port it cannot have"


def test_a_test_cluster_whose_port_was_taken_since_it_was_drawn_starts_on_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Workers draw ports apart: two may draw the same, and the first to start binds it.
    with socket.socket() as holder, server_dir("drawn") as root:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        draws = iter([taken, free_port()])
        monkeypatch.setattr(conftest, "free_port", lambda: next(draws))
        server = start_test_server(root)
        try:
            assert server.port != taken
            with psycopg.connect(server.dsn, connect_timeout=5) as conn:
                assert conn.execute("show port").fetchone() == (str(server.port),)
        finally:
            server.remove()


def test_a_postmaster_pid_naming_a_process_that_is_not_its_server_is_a_dead_server(data_dir: Path) -> None:
    # A postmaster killed with SIGKILL leaves its postmaster.pid; its pid may be handed on to any process.
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n0\n{free_port()}\n")
    server = EmbeddedPostgres(pgdata)
    assert server.running_port() is None
    assert server.postmaster_state() == "died"


def kill_postmaster(server: EmbeddedPostgres) -> None:
    """SIGKILL the server's postmaster, and return once it is seen dead."""
    os.kill(postmaster_pid(server.data_dir), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.postmaster_state() != "died":  # the signal is delivered, not yet acted on
        assert time.monotonic() < deadline, "the killed postmaster still runs"
        time.sleep(0.01)


def test_a_start_is_refused_as_still_exiting_while_the_dead_servers_backend_runs_its_query(data_dir: Path) -> None:
    """A killed postmaster's backend in the middle of a query keeps its shared memory until the query ends;
    PostgreSQL would refuse a start meanwhile (`pre-existing shared memory block ... is still in use`), so
    none is tried, and the refusal says what is left. Once it is gone, the server starts."""
    server = voicegate_server(data_dir)
    server.ensure_running()
    with busy_backend(server.dsn, seconds=3):
        kill_postmaster(server)
        log_size = (server.data_dir / "server.log").stat().st_size
        with pytest.raises(ServerStillExiting, match=r"its shared memory is still held by \d+ of its processes"):
            server.ensure_running()
        assert "pre-existing shared memory" not in (server.data_dir / "server.log").read_text()[log_size:]
    deadline = time.monotonic() + 30
    while server.dead_server_remains() is not None:  # the backend exits when it next waits; init reaps it
        assert time.monotonic() < deadline, server.dead_server_remains()
        time.sleep(0.05)
    assert server.ensure_running()
    assert server.is_ready()


def test_up_started_again_at_once_waits_for_the_dead_servers_backend_then_starts_it(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`up` started again right after a kill of the whole stack (the chaos run's case) finds the dead server's
    backend still in its query: it waits for it, saying so once, and then starts the server, rather than
    stopping with ServerStillExiting."""
    server = voicegate_server(data_dir)
    server.ensure_running()
    with busy_backend(server.dsn, seconds=2):
        kill_postmaster(server)
        assert server.dead_server_remains() is not None
        with caplog.at_level(logging.WARNING, logger="standins.postgres"):
            assert server.ensure_running_once_free(patience=30)
    assert server.is_ready()
    waits = [r.getMessage() for r in caplog.records if "waiting for it before starting it again" in r.getMessage()]
    assert len(waits) == 1, waits


def test_a_postmaster_that_exited_unreaped_is_left_of_a_dead_server_and_a_reused_pid_is_not(data_dir: Path) -> None:
    """PostgreSQL takes a pid that names any process for a live postmaster. An unreaped one (init reaps
    a killed postmaster when it gets to it) goes away by itself; a live process the pid was handed on to
    does not, and is not waited for."""
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True)
    server = EmbeddedPostgres(pgdata)
    exited = subprocess.Popen(["true"])  # exits at once; reaped at the end
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{exited.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        (pgdata / "postmaster.pid").write_text(f"{exited.pid}\n{pgdata}\n0\n{free_port()}\n\n127.0.0.1\n  1  2\n")
        assert server.postmaster_state() == "died"
        assert server.dead_server_remains() == f"its postmaster (pid {exited.pid}) has exited but is not yet reaped"
    finally:
        exited.wait()
    (pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{pgdata}\n0\n{free_port()}\n")
    assert server.postmaster_state() == "died"
    assert server.dead_server_remains() is None
