"""The connection pool, and the limits it holds its units of database work to.

A unit of database work (`backend.db.units.Database.work`) first waits for a connection: up to the pool's
`timeout` (`PoolLimits.connect_timeout` for the API) while nothing else gets an answer from the database
either (it is down or hung: `DatabaseUnavailable`), and while other units keep getting answers (it is
busy, not down) for as long as the pool's `busy_wait`, then `ServerBusy` (a 429, never a 503 while the
database answers). Once it has its connection, its work is held to the pool's `work_timeout` unless the
caller gives another (see `backend.db.deadline`). The server holds each statement to the same deadline
(`statement_timeout`) and a transaction left idle to `BUSY_WAIT_DEADLINES` times it
(`idle_in_transaction_session_timeout`), so a statement stuck on its side, or a client that vanished
mid-transaction, cannot pin a connection and its locks either.

A connection handed out is not pinged: one whose server went away (a restart, say) has already been told
so and is readable, which `Database.work` checks without a round trip, discarding such a connection. A
worker's pool is a service pool (`create_worker_pool`): its connections act as `service_role`, with the
pool's limits, from the moment they connect, so its transactions send no settings.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Final

import msgspec
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from backend.db.connection import PooledConnection
from backend.db.shares import Shares

# psycopg_pool warns of every connection it discards and every reconnection that fails, lines by the dozen
# per outage in each process; the units of work report the outage to DATABASE, which logs it once.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

#: How many times its work's deadline an API unit queues for a connection while the database is answering
#: other units (5 s by default), before it is answered 429.
BUSY_WAIT_DEADLINES = 5

_DECODE = msgspec.json.Decoder().decode

# A service pool's connections, once, as they connect: the same role and limits for the whole session.
_SERVICE_SESSION = (
    "select set_config('role', 'service_role', false), set_config('statement_timeout', %(limit)s, false),"
    " set_config('idle_in_transaction_session_timeout', %(idle)s, false)"
)


class PoolLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers a pool is held to (the settings' `VOICEGATE_DB_*`, see `Settings.pool_limits`)."""

    min_size: int
    """Connections the pool keeps open."""
    max_size: int
    """Most connections the pool opens."""
    connect_timeout: float
    """Seconds a unit waits for a connection while the database answers nobody."""
    work_timeout: float
    """Seconds the server may keep a unit waiting for an answer (its deadline)."""


#: The longest a connection of the pool lost to an outage waits between attempts to connect again (psycopg's wait
#: doubles from 1 s: after a restart of 3 s its next attempt came up to 4 s after the server was back, and with no
#: connection to take a request met the pool's timeout and was answered 503 while the database answered).
RECONNECT_EVERY_S: Final = 0.5


class _PromptAttempt(AttemptWithBackoff):
    """psycopg's attempts to connect again, from 0.1 s apart to at most `RECONNECT_EVERY_S`: a connection attempt
    to a server that is down is refused at once, and one that hangs waits out the connect timeout anyway."""

    INITIAL_DELAY = 0.1

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_EVERY_S)


class Pool(AsyncConnectionPool[PooledConnection]):
    """psycopg's pool, plus how long its units wait for a connection and the deadline of their work."""

    def __init__(
        self,
        conninfo: str,
        *,
        work_timeout: float,
        busy_wait: float,
        service: bool = False,
        shares: Shares | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(conninfo, connection_class=PooledConnection, configure=self._configure, **kwargs)
        self.work_timeout = work_timeout
        self.busy_wait = busy_wait
        #: Whether its connections act as `service_role`, with the pool's limits, from the start.
        self.service = service
        #: Each user's share of its connections, when its units serve users' requests (`backend.db.shares`).
        self.shares = shares

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        """psycopg's, with its retries no more than `RECONNECT_EVERY_S` apart (`_PromptAttempt`)."""
        await super()._add_connection(attempt or _PromptAttempt(timeout=self.reconnect_timeout), growing)

    async def _get_ready_connection(self, timeout: float | None) -> PooledConnection | None:  # noqa: ASYNC109 - psycopg's signature
        """psycopg's, except that the idle connection given back last is handed out first (a stack, as node-postgres
        keeps and SQLAlchemy's `pool_use_lifo` makes it, where psycopg's is a queue): a process that needs fewer
        connections than it has keeps its work on those whose backends are warm (their caches and prepared
        statements, in memory and on a CPU), rather than spreading it over all of them in turn, and the others
        stay idle, for `max_idle` to close. psycopg takes the queue's head: the newest is put there first."""
        self._pool.rotate(1)
        return await super()._get_ready_connection(timeout)

    def server_limits(self, budget: float | None) -> dict[str, str]:
        """`server_limits` of a unit's deadline (`budget`, default the pool's)."""
        return server_limits(self.work_timeout if budget is None else budget)

    async def _configure(self, conn: PooledConnection) -> None:
        """A new connection: JSON read with `read_json`, and on a service pool the service at its limits."""
        set_json_loads(read_json, conn)
        if self.service:
            await conn.execute(_SERVICE_SESSION, self.server_limits(None))


def read_json(data: str | bytes) -> Any:
    """A `json`/`jsonb` value as the server sends it, decoded by msgspec: several times quicker than the
    standard library, which psycopg uses by default, on the attempt rows, queue messages and voice profiles a
    worker reads with every attempt. What msgspec refuses and the standard library takes (a number beyond a
    float's range, as a `json` value keeps it written) is decoded as the standard library does."""
    try:
        return _DECODE(data)
    except msgspec.DecodeError:
        return json.loads(data)


def server_limits(seconds: float) -> dict[str, str]:
    """A unit's deadline (`seconds`) as the server's `statement_timeout`, and `BUSY_WAIT_DEADLINES` times it
    as its idle-in-transaction limit (a process busy between statements is not a vanished client)."""
    return {"limit": f"{math.ceil(seconds * 1000)}ms", "idle": f"{math.ceil(seconds * BUSY_WAIT_DEADLINES * 1000)}ms"}


#: The most of an API process's connections one user's requests hold at once, as a share of its pool.
USER_SHARE = 0.5


def create_pool(
    dsn: str, limits: PoolLimits, *, patience: float | None = None, service: bool = False, by_user: bool = False
) -> Pool:
    """A pool held to `limits`, opened by the caller (`await pool.open()`); `Database.work` discards a
    connection whose server hung up on it as it hands it out (the pool's own check would cost a round trip).
    With `by_user` (the API's), one user's units hold at most `USER_SHARE` of its connections at once
    (`backend.db.shares`).

    Its units wait for a connection as the API's do (see the module docstring), or, with `patience`
    (seconds), for that long whatever the database does: a worker or the Storage stand-in, whose callers
    would rather wait than fail, and which never take more work than they have connections for. With
    `service` it is a service pool (see the module docstring): for processes that only act as the service.
    """
    return Pool(
        dsn,
        service=service,
        shares=Shares(limits.max_size, int(limits.max_size * USER_SHARE)) if by_user else None,
        work_timeout=limits.work_timeout,
        busy_wait=patience or max(limits.connect_timeout, BUSY_WAIT_DEADLINES * limits.work_timeout),
        min_size=limits.min_size,
        max_size=limits.max_size,
        timeout=patience or limits.connect_timeout,
        # libpq's connect_timeout is whole seconds, at least 2 in effect.
        kwargs={"row_factory": dict_row, "connect_timeout": 2, "autocommit": True},
        open=False,
        name="voicegate",
    )


def create_worker_pool(dsn: str, limits: PoolLimits, *, patience: float) -> Pool:
    """The service pool a worker's consumers run on, whose units wait `patience` seconds for a connection
    (as long as a message stays invisible): waiting is not failing."""
    return create_pool(dsn, limits, patience=patience, service=True)
