"""What every operator script shares: arguments, the database connection, transactions, progress,
audit events, the summary table or JSON, and exit codes.

A script builds its arguments with `parser(...)` and hands `run(...)` a `body(ops)` that fills
`ops.report` as it goes, so a run that stops half-way (the database went away) still prints what it
did before exiting 3. Dry runs get read-only transactions: the database itself refuses their writes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import getpass
import json
import logging
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import psycopg
from psycopg.rows import dict_row
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from backend.compose.operator import OperatorRun, operator_run
from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.operator_unit import database_now, operator_transaction
from backend.errors import SettingsError, VoicegateError
from backend.providers.errors import ProviderError
from backend.settings import Settings, settings_from_env
from standins.embedded import database_dsn, with_auth_keys
from standins.postgres import EmbeddedPostgresError

if TYPE_CHECKING:
    from backend.storage.client import ObjectStorage

log = logging.getLogger("voicegate.ops")
T = TypeVar("T")
B = TypeVar("B")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_FAILED = 3

DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 5000
LOCK_TIMEOUT = "5s"
# Rows of the details table; `--json` always carries every item.
TABLE_ROWS = 50
EXIT_CODES_HELP = (
    "exit codes: 0 nothing wrong (or everything found was fixed), 1 problems found and left unfixed, "
    "2 usage or configuration error, 3 the run could not finish (database, Storage or provider unreachable)"
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class OpsError(Exception):
    """The run cannot go on; the message is for the operator (no secrets, no DSN)."""


class UsageError(OpsError):
    """The arguments ask for something this configuration cannot do (exit 2), found once connected."""


def duration(value: str) -> timedelta:
    """An argparse type for durations such as `90s`, `15m`, `24h`, `2d` (plain numbers are seconds)."""
    match = _DURATION.match(value)
    if match is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration such as 90s, 15m, 24h or 2d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"batch size must be a whole number from 1 to {MAX_BATCH_SIZE}")
    return size


def parser(name: str, description: str, *, changes: bool = True) -> argparse.ArgumentParser:
    """The shared arguments; `changes=False` for scripts that only report (no `--apply`)."""
    result = argparse.ArgumentParser(
        prog=f"voicegate ops {name}",
        description=description,
        epilog=EXIT_CODES_HELP
        + ". Database: --database-url, else DATABASE_URL, else the running embedded PostgreSQL of "
        "VOICEGATE_DATA_DIR.",
    )
    if changes:
        result.add_argument(
            "--apply", action="store_true", help="make the changes (default: a dry run that changes nothing)"
        )
    result.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    result.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"rows read (and changed) per transaction (default {DEFAULT_BATCH_SIZE})",
    )
    result.add_argument(
        "--database-url", metavar="URL", help="Postgres to use, a URL or key=value string (default: DATABASE_URL)"
    )
    result.add_argument("--actor", help="who is acting, recorded on every audit event (default ops:<script>:<os user>)")
    result.add_argument("--no-progress", action="store_true", help="no progress bar (it only shows on a terminal)")
    return result


@dataclass
class Report:
    """What a run found and did: counts (the summary table and JSON `counts`) and one item per finding.

    Conventions every script keeps: `problems` is what was found wrong, `fixed` what this run fixed,
    `unfixed` what is still wrong afterwards (the exit code is 1 when it is not 0).
    """

    script: str
    apply: bool
    columns: list[str]
    changes: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, amount: int = 1) -> None:
        """Add to a count."""
        self.counts[name] = self.counts.get(name, 0) + amount

    @property
    def exit_code(self) -> int:
        """1 when problems remain, else 0."""
        return EXIT_PROBLEMS if self.counts.get("unfixed", 0) > 0 else EXIT_OK


class ProgressBar:
    """Rich progress bars on stderr (stdout stays clean for `--json`), shown only on a terminal."""

    def __init__(self, enabled: bool, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._enabled = enabled and self._console.is_terminal

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Show one task while the block runs (cleared afterwards); yields `advance(n)`."""
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
            disable=not self._enabled,
        )
        with progress:
            task_id = progress.add_task(description, total=total)
            yield lambda n: progress.advance(task_id, n)


@dataclass
class Ops:
    """One run's context: arguments, settings, the connection, the report and who is acting."""

    name: str
    args: argparse.Namespace
    settings: Settings
    dsn: str
    conn: Connection
    report: Report
    actor: str
    run_id: uuid.UUID
    progress: ProgressBar
    #: The run as `backend.compose.operator` builds it: the connection, and the providers and Storage the
    #: script asks for, closed with the run.
    run: OperatorRun

    @property
    def apply(self) -> bool:
        """Whether this run may change anything."""
        return bool(getattr(self.args, "apply", False))

    @property
    def batch_size(self) -> int:
        """Rows per batch."""
        size: int = self.args.batch_size
        return size

    async def pages(self, label: str, page: Callable[[Any], Awaitable[tuple[Sequence[T], Any]]]) -> AsyncIterator[T]:
        """Every item of a keyset-paged walk, counted on a progress line named `label`: `page(after)`
        answers one batch and the key to continue after (`after` is None at first), None after the last."""
        after = None
        with self.progress.task(label, None) as advance:
            while True:
                items, after = await page(after)
                for item in items:
                    yield item
                advance(len(items))
                if after is None:
                    return

    def sweep(
        self,
        label: str,
        sweep: Callable[..., Awaitable[B]],
        place: object,
        take: Callable[[B], tuple[Sequence[T], Any]],
        **bound: Any,
    ) -> AsyncIterator[T]:
        """Every item of a backend sweep (`purge_expired_samples`, `sweep_orphan_objects`, `sweep_orphans`), batch
        after batch on a progress line named `label` (see `pages`). A batch is one call `sweep(source, place,
        limit=..., apply=..., actor=..., after=..., detail=..., **bound)` as this run makes it: transactions of
        its own (writable only when it applies), its batch size, actor and `audit_detail`. `bound` is the sweep's
        own bound (`now=...`, `written_before=...`); `take(batch)` answers the batch's items and the key to
        continue after (None after the last). mypy infers the items' type from a `take` that is a def; from a
        lambda only with the type of the variable the result is given to."""

        async def page(after: Any) -> tuple[Sequence[T], Any]:
            batch = await sweep(
                lambda: self.transaction(write=self.apply),
                place,
                limit=self.batch_size,
                apply=self.apply,
                actor=self.actor,
                after=after,
                detail=self.audit_detail,
                **bound,
            )
            return take(batch)

        return self.pages(label, page)

    def continue_after(self, items: Sequence[T], key: Callable[[T], Any]) -> Any:
        """The key to continue after: the last item's, when the batch came back full."""
        return key(items[-1]) if len(items) == self.batch_size else None

    @property
    def audit_detail(self) -> dict[str, Any]:
        """Added to every audit event of this run, so one run's changes can be found together."""
        return {"run_id": str(self.run_id), "script": self.name}

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[Connection]:
        """A transaction as the service. Read-only unless `write` (and never writable in a dry run)."""
        if write and not self.apply:
            raise RuntimeError("a dry run asked for a writable transaction")
        async with operator_transaction(self.conn, write=write, lock_timeout=LOCK_TIMEOUT) as conn:
            yield conn

    async def audit(
        self, conn: Connection, action: str, subject_type: str, subject_id: object, detail: dict[str, Any]
    ) -> None:
        """Write one audit event in `conn`'s (writable) transaction, beside the change it records, with this
        run's `audit_detail`."""
        await record_audit(conn, self.actor, action, subject_type, subject_id, detail={**self.audit_detail, **detail})

    async def database_now(self) -> datetime:
        """The database's clock (leases and expiries are measured by it)."""
        async with self.transaction() as conn:
            return await database_now(conn)


def add_local_storage_dir(arguments: argparse.ArgumentParser) -> None:
    """`--local-storage-dir`, for scripts that touch Storage (see `open_storage`)."""
    arguments.add_argument(
        "--local-storage-dir",
        type=Path,
        metavar="DIR",
        help="use the local Storage stand-in rooted at DIR (embedded mode's VOICEGATE_DATA_DIR/storage) "
        "instead of Supabase Storage",
    )


def local_storage_dir(ops: Ops) -> Path | None:
    """The stand-in's root this run works on: `--local-storage-dir`, else embedded mode's; None when
    Storage is Supabase's."""
    local_dir: Path | None = getattr(ops.args, "local_storage_dir", None)
    if local_dir is None and ops.settings.embedded:
        local_dir = ops.settings.data_dir / "storage"
    return local_dir


def _supabase_storage(settings: Settings) -> tuple[str, str]:
    """Supabase Storage's address and the service key."""
    try:
        settings = with_auth_keys(settings)
    except SettingsError as exc:
        raise OpsError(f"Storage is not configured: {exc}") from exc
    auth = settings.auth
    key = auth.service_key if auth else None
    if auth is None or auth.supabase_url is None or key is None:
        raise OpsError("removing objects needs SUPABASE_URL and SUPABASE_SECRET_KEY (or SUPABASE_SERVICE_ROLE_KEY)")
    return settings.storage_public_url, key.reveal()


async def open_storage(ops: Ops) -> ObjectStorage:
    """Where this run removes objects, open until the run ends: the local stand-in (embedded mode, or
    `--local-storage-dir`), run in this process so it removes rows and files exactly as a running API would;
    else Supabase Storage with the service key."""
    local_dir = local_storage_dir(ops)
    if local_dir is not None:
        # The stand-in is a web app served in this process: only a run that removes objects loads the framework.
        from standins.storage.in_process import standalone_storage  # noqa: PLC0415

        return await ops.run.hold(standalone_storage(ops.run.dsn, local_dir))
    return await ops.run.supabase_storage(*_supabase_storage(ops.settings))


def default_actor(name: str) -> str:
    """`ops:<script>:<os user>`: who ran what, for the audit trail."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"ops:{name}:{user}"[:200]


async def connect(dsn: str, name: str) -> Connection:
    """An autocommit connection: every unit of work opens its own short transaction."""
    try:
        return await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, row_factory=dict_row, connect_timeout=10, application_name=f"voicegate-ops-{name}"
        )
    except psycopg.OperationalError as exc:
        # libpq's message can quote the connection string's host and user, never its password.
        raise OpsError(f"cannot connect to the database: {str(exc).strip().splitlines()[0]}") from exc


def render(
    report: Report, *, as_json: bool, run_id: uuid.UUID, actor: str, error: str | None = None, as_csv: bool = False
) -> None:
    """Print the report: one JSON document, its items as CSV (a script that offers `--csv`; notes, the summary and
    an error go to stderr then), or a details table, notes and the summary table."""
    if as_csv and not as_json:
        _render_csv(report, error)
        return
    if as_json:
        document = {
            "script": report.script,
            "apply": report.apply,
            "runId": str(run_id),
            "actor": actor,
            "counts": report.counts,
            "items": report.items,
            "notes": report.notes,
            "error": error,
            "exitCode": EXIT_FAILED if error else report.exit_code,
        }
        sys.stdout.write(msgspec.json.encode(document).decode() + "\n")
        return
    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 200)
    if report.items:
        console.print(f"Details ({len(report.items)})")
        details = Table(box=box.SIMPLE_HEAD)
        for column in report.columns:
            details.add_column(column, overflow="fold")
        for item in report.items[:TABLE_ROWS]:
            details.add_row(*(_cell(item.get(column)) for column in report.columns))
        console.print(details)
        if len(report.items) > TABLE_ROWS:
            console.print(f"... and {len(report.items) - TABLE_ROWS} more (--json lists every item)")
    # A note is one line, however long: wrapped at the console's width it would break ids and names in two.
    for note in report.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    if error:
        console.print(f"stopped early: {error}", markup=False, soft_wrap=True)
    if not report.changes:
        mode = "read only"
    else:
        mode = "applied" if report.apply else "dry run: nothing was changed; add --apply to fix"
    console.print(f"Summary of {report.script} ({mode})", markup=False)
    summary = Table(box=box.SIMPLE_HEAD)
    summary.add_column("count")
    summary.add_column("value", justify="right")
    for name, value in report.counts.items():
        summary.add_row(name, str(value))
    console.print(summary)


def _render_csv(report: Report, error: str | None) -> None:
    """The items as CSV on stdout, under a header of the report's columns; the notes and an error on stderr."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(report.columns)
    writer.writerows([_csv_cell(item.get(column)) for column in report.columns] for item in report.items)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if error:
        print(f"stopped early: {error}", file=sys.stderr)


def _csv_cell(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def run(
    name: str,
    argv: list[str] | None,
    arguments: argparse.ArgumentParser,
    columns: list[str],
    body: Callable[[Ops], Awaitable[None]],
    *,
    check: Callable[[argparse.Namespace], str | None] | None = None,
) -> int:
    """Parse `argv` (`check` may refuse a combination: usage error, exit 2), connect, run `body`,
    print the report; returns the exit code."""
    args = arguments.parse_args(argv)
    problem = check(args) if check else None
    if problem:
        arguments.error(problem)
    try:
        settings = settings_from_env()
        if args.database_url:
            # libpq accepts a URL or a `key=value` string here; it says itself what it cannot parse.
            settings = msgspec.structs.replace(settings, database_url=args.database_url)
        dsn = database_dsn(settings)
    except (SettingsError, EmbeddedPostgresError) as exc:
        print(f"voicegate ops {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = Report(
        script=name, apply=bool(getattr(args, "apply", False)), columns=columns, changes=hasattr(args, "apply")
    )
    run_id = uuid.uuid4()
    actor = (args.actor or default_actor(name))[:200]
    error: str | None = None
    try:
        asyncio.run(
            _run(name=name, args=args, settings=settings, dsn=dsn, report=report, actor=actor, run_id=run_id, body=body)
        )
    except KeyboardInterrupt:
        error = "interrupted"
    except UsageError as exc:
        render(report, as_json=args.json, run_id=run_id, actor=actor, error=str(exc), as_csv=_csv(args))
        print(f"voicegate ops {name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OpsError, VoicegateError, ProviderError, psycopg.Error) as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        log.exception("voicegate ops %s failed", name)
        error = f"{type(exc).__name__}: {exc}"
    render(report, as_json=args.json, run_id=run_id, actor=actor, error=error, as_csv=_csv(args))
    if error:
        print(f"voicegate ops {name}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return report.exit_code


def _csv(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "csv", False))


async def _run(
    *,
    name: str,
    args: argparse.Namespace,
    settings: Settings,
    dsn: str,
    report: Report,
    actor: str,
    run_id: uuid.UUID,
    body: Callable[[Ops], Awaitable[None]],
) -> None:
    async with operator_run(settings, dsn, functools.partial(connect, dsn, name)) as operator:
        ops = Ops(
            name=name,
            args=args,
            settings=settings,
            dsn=dsn,
            conn=operator.conn,
            report=report,
            actor=actor,
            run_id=run_id,
            progress=ProgressBar(not args.no_progress),
            run=operator,
        )
        await body(ops)


def chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    """`values` in consecutive slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
