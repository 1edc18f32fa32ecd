"""The `voicegate` command line."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from backend.errors import SettingsError
from backend.logs import formatter
from backend.settings import DEFAULT_DATA_DIR, Settings, env_var, settings_from_env
from standins.dev_users import DEV_USER_EMAIL
from voicegate.errors import CommandError
from voicegate.serving import api_listener, run_server, serve_app

if TYPE_CHECKING:
    pass

log = logging.getLogger("voicegate")
#: How long `voicegate stop` waits for a running `up` to shut down (it drains its queue work first).
STOP_PATIENCE_S = 60.0


class _StandardError:
    """`sys.stderr` as it is at each write, not as it was when logging was set up: code that swaps it (a
    test's capture does, and closes the one it replaces) keeps every record and raises nothing."""

    def write(self, text: str) -> int:
        """Write `text` to the current standard error."""
        return sys.stderr.write(text)

    def flush(self) -> None:
        """Flush the current standard error."""
        sys.stderr.flush()


def configure_logging(level: str, log_format: Literal["text", "json"] = "text") -> None:
    """The process's log records at `level` and above, one line each (text or JSON), to standard error."""
    handler = logging.StreamHandler(_StandardError())
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # httpx logs every request's URL at INFO, and a signed Storage URL carries its token in the query: quieted
    # here, once, for every process of the command (the API, the worker and the operator scripts alike).
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `voicegate` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            data_dir=getattr(args, "data_dir", None),
            pg_port=getattr(args, "pg_port", None),
        )
        if args.run in (_up, _serve, _worker):
            # They decode uploads, judge their speakers and watermark what they synthesize: ffmpeg is found, the
            # speaker encoder and the watermark loaded before anything starts.
            from backend.audio.ffmpeg import use_ffmpeg  # noqa: PLC0415 - keep `--help` fast
            from backend.voiceprint.encoder import use_encoder  # noqa: PLC0415
            from backend.watermark.network import use_watermark  # noqa: PLC0415

            use_ffmpeg(settings.ffmpeg)
            use_encoder()
            use_watermark()
            if args.run in (_up, _serve):  # the API hears consent readings
                from backend.consents.whisper import use_languages  # noqa: PLC0415

                use_languages(settings.consent_language_codes)
            _give_back_freed_memory()
        if args.run in (_up, _serve, _token, _worker, _storage):
            from standins.embedded import with_auth_keys  # noqa: PLC0415 - keep `--help` fast

            settings = with_auth_keys(settings)
    except SettingsError as exc:
        parser.exit(2, f"voicegate: configuration error: {exc}\n")
    configure_logging(settings.log_level, settings.log_format)
    try:
        return int(args.run(settings, args))
    except CommandError as exc:
        print(f"voicegate: {exc}", file=sys.stderr)
        return exc.exit_code
    except SettingsError as exc:  # found while starting: the C2PA signing credentials
        parser.exit(2, f"voicegate: configuration error: {exc}\n")
    except KeyboardInterrupt:
        return 130


def _applied_words(applied: Sequence[str]) -> str:
    """The migrations a run applied, in a line: their number and the first and last (a first start applies them all,
    80 and more names)."""
    if not applied:
        return "none (up to date)"
    if len(applied) <= 3:
        return ", ".join(applied)
    return f"{len(applied)}, {applied[0]} to {applied[-1]}"


def _give_back_freed_memory() -> None:
    """Return to the system the heap the models' loading freed: building their graphs leaves tens of MB that
    glibc keeps for reuse (`voicegate up` at rest: 377 -> 311 MB resident). A libc without `malloc_trim` keeps
    it."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicegate",
        description="Voice-clone lifecycle backend for Supabase apps.",
        epilog=f"Database: {env_var('database_url')} selects an external Postgres (Supabase); "
        "without it voicegate runs an embedded PostgreSQL under the data directory.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="embedded stack in the foreground: Postgres, migrations, API, queue consumers")
    _add_server_flags(up)
    _add_data_dir(up)
    up.add_argument(
        "--pg-port", type=int, help=f"loopback port of the embedded Postgres (env {env_var('pg_port')}, default 54322)"
    )
    up.add_argument(
        "--fake-providers",
        action="store_true",
        help="also serve the local fakes of Qwen, ElevenLabs, Cartesia and a self-hosted speech server"
        " (development checkouts only)"
        " and point this run's provider settings at them",
    )
    up.add_argument(
        "--no-consumers",
        action="store_true",
        help="run no queue consumers in this process: `voicegate worker` processes started beside it do the work",
    )
    up.set_defaults(run=_up)

    serve = commands.add_parser("serve", help="the HTTP API only, against DATABASE_URL or a running embedded Postgres")
    _add_server_flags(serve)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker",
        help="the queue consumers only (run N of them), against DATABASE_URL or a running embedded Postgres"
        f" and the Storage of SUPABASE_URL, or that of the `voicegate up` running for the data directory (unless"
        f" {env_var('public_url')} names the API); CONSUMER_MODE=http makes them call the API's internal route",
    )
    worker.set_defaults(run=_worker)

    storage = commands.add_parser(
        "storage",
        help="the Storage stand-in alone, for a stack on DATABASE_URL without a Supabase project: /storage/v1"
        " (objects under the data directory), which the API and workers reach at SUPABASE_URL",
    )
    _add_server_flags(storage)
    _add_data_dir(storage, "where the objects are kept (under storage/)")
    storage.set_defaults(run=_storage)

    stop = commands.add_parser(
        "stop",
        help="stop what runs for the data directory: its `voicegate up` (as Ctrl-C would) and the embedded"
        " PostgreSQL, one a killed `up` left running included",
    )
    _add_data_dir(stop)
    stop.set_defaults(run=_stop)

    migrate = commands.add_parser("migrate", help="apply stand-ins, pgmq, migrations and buckets, then exit")
    _add_data_dir(migrate)
    migrate.add_argument(
        "--include-all",
        action="store_true",
        help="also apply migrations older than the latest applied one (as `supabase db push --include-all`)",
    )
    migrate.set_defaults(run=_migrate)

    verify = commands.add_parser(
        "verify", help="print a WAV or MP3's C2PA manifest and whether it validates (exit 0 valid, 1 not)"
    )
    verify.add_argument("file", type=Path, help="the audio file to check")
    verify.add_argument("--json", action="store_true", help="print c2pa's whole manifest store as JSON instead")
    _add_data_dir(verify, "embedded data directory whose development CA is trusted")
    verify.set_defaults(run=_verify)

    token = commands.add_parser(
        "token",
        help="embedded mode: print a dev access token for a user, against the Postgres that `voicegate up` runs for"
        " the data directory",
    )
    token.add_argument(
        "--user",
        default=DEV_USER_EMAIL,
        help=f"user id (uuid) or email; an unknown email is created (default {DEV_USER_EMAIL}, the demo page's user)",
    )
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    _add_data_dir(token, "the data directory of the running `voicegate up`")
    token.set_defaults(run=_token)

    from scripts import SCRIPT_NAMES  # noqa: PLC0415 - the names only, not the scripts

    ops = commands.add_parser(
        "ops",
        help="operator scripts (dry run unless --apply); `voicegate ops <script> --help` for each",
    )
    ops.add_argument("script", choices=SCRIPT_NAMES, help="the script to run")
    ops.add_argument("args", nargs=argparse.REMAINDER, help="its arguments (--apply, --json, ...)")
    ops.set_defaults(run=_ops)
    return parser


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help=f"bind address (env {env_var('host')}, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"HTTP port (env {env_var('port')}, default 8000)")


def _add_data_dir(parser: argparse.ArgumentParser, what: str = "embedded data directory") -> None:
    parser.add_argument("--data-dir", type=Path, help=f"{what} (env {env_var('data_dir')}, default .voicegate)")


def _up_stack(settings: Settings, *, run_consumers: bool = True, env: Mapping[str, str] | None = None) -> int:
    """`up`'s stack: Postgres (embedded) and its migrations, then the API (VOICEGATE_API_PROCESSES of them, the
    first with the queue consumers), until a signal stops it. `env`: what the API's other processes are started
    with besides this one's environment (the fakes' providers)."""
    from backend.db.migrate import migrate  # noqa: PLC0415 - keep `--help` fast
    from standins.api_address import published  # noqa: PLC0415
    from standins.postgres import EmbeddedPostgresError, for_data_dir  # noqa: PLC0415
    from standins.postgres_supervisor import Supervisor  # noqa: PLC0415

    if settings.api_processes > 1:
        settings = msgspec.structs.replace(settings, reuse_port=True)
    listener = api_listener(settings)  # before Postgres and migrations: a taken port is said at once
    supervisor = None
    loader = _load_server_code()
    if settings.embedded:
        pg = for_data_dir(settings.data_dir, settings.pg_port)
        try:
            started_here = pg.ensure_running_once_free()
        except EmbeddedPostgresError as exc:
            loader.join()
            raise CommandError(str(exc)) from exc
        log.info(
            "%s embedded PostgreSQL in %s on port %d%s",
            "started" if started_here else "reusing",
            pg.data_dir,
            pg.port,
            ", connecting over its Unix socket" if pg.socket_dir is not None else " (TCP only: it has no Unix socket)",
        )
        dsn = pg.dsn
        # The data directory's server is this run's to keep alive, whoever started it: one found running
        # was most likely left by an `up` that was killed, and nothing else would start it again.
        supervisor = Supervisor(pg, _give_up)
    else:
        pg, started_here, dsn = None, False, _dsn(settings)
    try:
        report = migrate(dsn)
        log.info("migrations applied this run: %s", _applied_words(report.applied))
        base = banner_address(settings)
        print(
            f"voicegate is starting on {base}\n  demo page: {base}/\n  readiness: {base}/readyz\n"
            f"  API docs:  {base}/schema\n  docs site: {base}/docs/",
            flush=True,
        )
        if settings.embedded:
            print(f"  a token:   {token_command(settings)}", flush=True)
            if settings.auth is not None and settings.auth.anon_key is not None:
                # Public by design (also in /config.json): what Supabase clients take with the URL.
                print(f"  anon key:  {settings.auth.anon_key}", flush=True)
        if supervisor is not None:
            supervisor.start()
        loader.join()
        with (
            published(settings.data_dir, settings.api_base_url) if settings.embedded else contextlib.nullcontext(),
            _more_api_processes(settings, env or {}),
        ):
            code = run_server(settings, dsn, listener, run_consumers=run_consumers)
        return 1 if supervisor is not None and supervisor.gave_up else code
    finally:
        loader.join()
        listener.close()
        if supervisor is not None:
            supervisor.stop()
        # A server this run started (or started again) is stopped with it; one it found running and that
        # kept running is left so, as whoever started it may still use it.
        ours = started_here or (supervisor is not None and supervisor.restarted)
        if pg is not None and ours and pg.postmaster_state() == "running":
            log.info("stopping embedded PostgreSQL")
            pg.stop()


@contextlib.contextmanager
def _more_api_processes(settings: Settings, env: Mapping[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """VOICEGATE_API_PROCESSES less one `voicegate serve` processes beside this one, on its host and port (each
    binds its own socket with SO_REUSEPORT) and its data directory, for as long as the block runs; then each is
    stopped (SIGTERM: its streams drain as this process's do) and waited for. Streams opening at once queue for
    one event loop and share one CPU executor (and its GIL); in two processes they queue for two."""
    more = []
    child_env = {
        **os.environ,
        **env,
        env_var("host"): settings.host,
        env_var("port"): str(settings.port),
        env_var("data_dir"): str(settings.data_dir),
        env_var("pg_port"): str(settings.pg_port),
        env_var("reuse_port"): "true",
        env_var("api_processes"): "1",
    }
    # Found before any fork: the child then only calls it, as a C function, taking no lock another thread held.
    prctl = ctypes.CDLL(None).prctl
    try:
        for _ in range(settings.api_processes - 1):
            more.append(
                subprocess.Popen(
                    [sys.executable, "-m", "voicegate.cli", "serve"],
                    env=child_env,
                    # SIGTERM when `up` ends, even killed (SIGKILL), so no API process outlives it holding the port.
                    preexec_fn=lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM),  # noqa: PLW1509 - no lock taken
                )
            )
        if more:
            log.info("serving the API from %d processes: this one and %s", len(more) + 1, [p.pid for p in more])
        yield more
    finally:
        for process in more:
            process.terminate()
        for process in more:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


#: prctl's option that sends the calling process a signal when its parent thread dies.
_PR_SET_PDEATHSIG = 1


def _load_server_code() -> threading.Thread:
    """A thread importing the server's code (the app, its routes and consumers: over a second of one core) while
    `up` starts Postgres and migrates, which mostly wait on other processes: `up` is ready that much sooner. An
    import that fails here is left for `run_server` to meet again and report."""

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module("backend.app")
            importlib.import_module("queue_consumers.worker")

    loader = threading.Thread(target=load, name="voicegate-load-server", daemon=True)
    loader.start()
    return loader


def _give_up(reason: str) -> None:
    """The embedded Postgres keeps dying: say so and shut the server down (`up` then exits 1)."""
    print(f"voicegate: {reason}; stopping", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


def _up(settings: Settings, args: argparse.Namespace) -> int:
    """`voicegate up`, optionally with the provider fakes, optionally without the queue consumers."""
    run_consumers = not args.no_consumers
    if args.fake_providers:
        return _up_with_fake_providers(settings, run_consumers=run_consumers)
    return _up_stack(settings, run_consumers=run_consumers)


#: The provider fakes' package: a development checkout's `fakes/`, beside `voicegate/` (in no wheel, no image).
FAKES_MODULE = "fakes"


def _fakes_checkout() -> Path | None:
    """The development checkout this voicegate runs from, when it holds the fakes: the fakes then start from
    there whatever the working directory (an installed voicegate has none, and looks in the working directory)."""
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / FAKES_MODULE / "__main__.py").is_file() else None


def _up_with_fake_providers(settings: Settings, *, run_consumers: bool) -> int:
    """`up`, with the providers' fakes served on loopback and configured as this run's providers. The fakes are
    a development checkout's (`fakes/`), run as a program of their own (`python -m fakes all`), which ends as
    its standard input closes: with this process, however it ends."""
    command = [sys.executable, "-m", FAKES_MODULE, "all"]
    # This interpreter and a fixed module: nothing of the command comes from input.
    with subprocess.Popen(  # noqa: S603
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_fakes_checkout()
    ) as fakes:
        stdin, stdout = fakes.stdin, fakes.stdout
        if stdin is None or stdout is None:
            raise CommandError("could not start the provider fakes")
        try:
            served = msgspec.json.decode(stdout.readline() or "null", type=_ServedFakes | None)
            if served is None:
                print(
                    f"voicegate: --fake-providers needs the provider fakes of a development checkout (its"
                    f" `{FAKES_MODULE}/` package, which no wheel or image holds): run `voicegate up"
                    " --fake-providers` from a checkout",
                    file=sys.stderr,
                )
                return 2
            for name, url in served.urls.items():
                print(f"fake {name} provider: {url}", flush=True)
            providers = settings_from_env({**os.environ, **served.env}).providers
            return _up_stack(
                msgspec.structs.replace(settings, providers=providers), run_consumers=run_consumers, env=served.env
            )
        finally:
            stdin.close()
            try:
                fakes.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fakes.kill()


class _ServedFakes(msgspec.Struct, frozen=True):
    """What `python -m fakes all` prints: each fake's URL, and the environment naming them."""

    urls: dict[str, str]
    env: dict[str, str]


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    with api_listener(settings) as listener:
        return run_server(settings, _dsn(settings), listener, run_consumers=False)


def _storage(settings: Settings, _args: argparse.Namespace) -> int:
    from standins.storage.server import create_storage_app  # noqa: PLC0415 - keep `--help` fast

    if settings.database_url is None:
        raise CommandError(
            f"`voicegate storage` serves a stack on {env_var('database_url')}; without it, `voicegate up` and"
            " `serve` serve the Storage stand-in themselves"
        )
    app = create_storage_app(settings, settings.database_url)
    with api_listener(settings) as listener:
        serve_app(settings, app, listener)
    return 0


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    """`voicegate worker`; refuses to start (exit 2, one line) when Storage does not answer."""
    import asyncio  # noqa: PLC0415

    from queue_consumers.worker import StorageUnreachable, serve_worker  # noqa: PLC0415

    settings, beside_up = _beside_up(settings)
    try:
        return asyncio.run(serve_worker(settings, _dsn(settings)))
    except StorageUnreachable as exc:
        raise CommandError(f"{exc}; {_storage_hint(settings, beside_up=beside_up)}", exit_code=2) from exc


def _beside_up(settings: Settings) -> tuple[Settings, bool]:
    """In embedded mode, unless VOICEGATE_PUBLIC_URL names the API: the settings pointed at the API (and its
    Storage) of the `voicegate up` running for the data directory, on whatever port, and whether one was."""
    if not settings.embedded or settings.public_url is not None:
        return settings, False
    from standins.api_address import running_api_url  # noqa: PLC0415 - embedded only

    url = running_api_url(settings.data_dir)
    if url is None:
        return settings, False
    log.info("the API of %s is %s", settings.data_dir, url)
    return msgspec.structs.replace(settings, public_url=url), True


def _storage_hint(settings: Settings, *, beside_up: bool) -> str:
    """What to do about a Storage the worker cannot reach, given where its address came from."""
    if not settings.embedded:
        if settings.auth is None or settings.auth.supabase_url is None:
            return "set SUPABASE_URL to the Supabase project whose Storage the workers use"
        return "check SUPABASE_URL"
    if beside_up:
        return f"the `voicegate up` running for {settings.data_dir} does not answer there"
    if settings.public_url is not None:
        return f"check {env_var('public_url')}"
    return (
        f"no `voicegate up` is running for {settings.data_dir}: start it,"
        f" or set {env_var('public_url')} to the address of the API that serves its Storage"
    )


def _stop(settings: Settings, _args: argparse.Namespace) -> int:
    """`voicegate stop`: SIGTERM to the data directory's running `up` (which stops the Postgres it started), then a
    fast shutdown of the embedded Postgres if it still runs; says what it stopped."""
    from standins.api_address import alive, running_up  # noqa: PLC0415 - embedded only
    from standins.postgres import EmbeddedPostgresError, for_data_dir  # noqa: PLC0415

    if not settings.embedded:
        raise CommandError("`voicegate stop` stops the embedded stack of a data directory; DATABASE_URL is set")
    stopped = []
    up = running_up(settings.data_dir)
    if up is not None:
        os.kill(up.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_PATIENCE_S
        while alive(up.pid):
            if time.monotonic() > deadline:
                raise CommandError(f"voicegate up (pid {up.pid}) did not stop within {STOP_PATIENCE_S:.0f} s")
            time.sleep(0.1)
        stopped.append(f"voicegate up (pid {up.pid})")
    pg = for_data_dir(settings.data_dir, settings.pg_port)
    if pg.postmaster_state() == "running":
        try:
            pg.stop()
        except EmbeddedPostgresError as exc:
            raise CommandError(str(exc)) from exc
        stopped.append(f"the embedded PostgreSQL in {pg.data_dir}")
    print(f"stopped {' and '.join(stopped)}" if stopped else f"nothing of {settings.data_dir} was running")
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from backend.db.migrate import migrate  # noqa: PLC0415
    from standins.postgres import EmbeddedPostgresError, for_data_dir  # noqa: PLC0415

    if settings.embedded:
        try:
            for_data_dir(settings.data_dir, settings.pg_port).ensure_running()
        except EmbeddedPostgresError as exc:
            raise CommandError(str(exc)) from exc
    report = migrate(_dsn(settings), include_all=bool(args.include_all))
    print(f"applied: {_applied_words(report.applied)}; buckets: {', '.join(report.buckets)}")
    return 0


def banner_address(settings: Settings) -> str:
    """Where `up`'s banner sends a reader: `VOICEGATE_PUBLIC_URL` when it is set (a container's published address),
    else the bound address, loopback for a wildcard one (a browser cannot open `http://0.0.0.0:8000/`)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host  # noqa: S104 - compared, not bound
    return f"http://{host}:{settings.port}"


def token_command(settings: Settings) -> str:
    """The command that prints a dev token against this embedded stack, as a user would type it."""
    program = shlex.quote(sys.argv[0]) if sys.argv and sys.argv[0].endswith("voicegate") else "voicegate"
    data_dir = "" if settings.data_dir == DEFAULT_DATA_DIR else f" --data-dir {shlex.quote(str(settings.data_dir))}"
    return f"{program} token --user {DEV_USER_EMAIL}{data_dir}"


def _token(settings: Settings, args: argparse.Namespace) -> int:
    """Print a dev access token for `--user`, creating the user (by email) in voicegate's auth.users stand-in: on the
    embedded PostgreSQL that `voicegate up` runs for this data directory (found as `voicegate ops` finds it), or
    at `DATABASE_URL` when voicegate's stand-ins made that database's `auth` (a compose stack)."""
    import asyncio  # noqa: PLC0415
    import uuid  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    from standins.dev_tokens import mint_user_token  # noqa: PLC0415
    from standins.dev_users import (  # noqa: PLC0415
        DevUser,
        dev_user_by_id,
        find_or_create_dev_user,
        has_auth_stand_in,
    )

    user, ttl = str(args.user), int(args.ttl)
    if settings.auth is None or settings.auth.jwt_secret is None:
        raise CommandError("`voicegate token` signs with SUPABASE_JWT_SECRET, which is not set")
    try:
        user_id = None if "@" in user else uuid.UUID(user)
    except ValueError as exc:
        raise CommandError(f"--user must be an email or a user id (uuid), not {user!r}") from exc
    dsn = _dsn(settings)

    async def lookup() -> DevUser | None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            # Users are made here only in voicegate's own stand-in (embedded, or compose with no Supabase project).
            if not settings.embedded and not await has_auth_stand_in(conn):
                raise CommandError(
                    "`voicegate token` makes users only where voicegate stands in for Supabase Auth (embedded, or"
                    " compose with no Supabase project); on a Supabase project, sign users in with Supabase Auth"
                )
            return await (dev_user_by_id(conn, user_id) if user_id else find_or_create_dev_user(conn, user))

    try:
        row = asyncio.run(lookup())
    except psycopg.OperationalError as exc:
        raise CommandError(f"cannot reach the PostgreSQL: {str(exc).strip().splitlines()[0]}") from exc
    if row is None:
        raise CommandError(f"no user {user} in auth.users; pass an email to create one")
    print(mint_user_token(settings.auth.jwt_secret, row[0], email=row[1], ttl_seconds=ttl))
    return 0


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    """`voicegate verify FILE`: the active manifest, then VALID (trusted or not) or INVALID and why."""
    import json  # noqa: PLC0415

    from backend.errors import ProvenanceUnreadable  # noqa: PLC0415 - c2pa loads a native library
    from backend.provenance.verify import Verifier, summarize  # noqa: PLC0415

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"INVALID: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    verifier = Verifier.from_settings(settings)
    try:
        result = verifier.verify(data)
    except ProvenanceUnreadable as exc:
        print(f"INVALID: {exc.detail}")
        return 1
    finally:
        verifier.close()
    if args.json:
        print(json.dumps(result.manifest_store, indent=2))
    else:
        print(f"{path}: {result.mime_type}, {len(data)} bytes")
        print("\n".join(summarize(result)))
    if result.state == "unsigned":
        print("INVALID: the file carries no C2PA manifest")
    elif not result.valid:
        reasons = "; ".join(f"{item.code}: {item.explanation}" for item in result.failures)
        print(f"INVALID: {reasons or 'the manifest does not validate'}")
    elif result.trusted:
        print("VALID, trusted: intact, and the signing certificate chains to a configured trust anchor")
    else:
        print(
            "VALID, not trusted: intact, but the signing certificate chains to no configured trust anchor"
            f" ({env_var('c2pa_trust_anchors')}, or the development CA in embedded mode)"
        )
    return 0 if result.valid else 1


def _ops(_settings: Settings, args: argparse.Namespace) -> int:
    """`voicegate ops <script> [args...]`: the script reads its own settings and arguments."""
    import importlib  # noqa: PLC0415

    script = importlib.import_module(f"scripts.{args.script.replace('-', '_')}")
    return int(script.main(list(args.args)))


def _dsn(settings: Settings) -> str:
    """The database's address (`database_dsn`), CommandError when it has none."""
    from standins.embedded import database_dsn  # noqa: PLC0415
    from standins.postgres import EmbeddedPostgresError  # noqa: PLC0415

    try:
        return database_dsn(settings)
    except EmbeddedPostgresError as exc:
        raise CommandError(str(exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
