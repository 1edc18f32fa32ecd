"""Charging: the one path every provider call that sends text goes through (a job's piece, a stream's sentence, a
preview, a likeness probe), so that the ledger holds the characters the providers were sent, and the quota bounds
them.

A call's first send is reserved on the transaction that decides to make the call (`Ledger.reserve`, committed before
the call), as the rest of that decision commits with it. The call is then made through its `Charge`, which the
provider's adapter tells of every send of the text (`backend.providers.base.SendMeter`): a resend (an inline retry of
a 429, a 5xx, an answer lost) is reserved before it is made, against the quota, and one the quota refuses is never
made (QuotaExceeded reaches the caller, as the first reservation's refusal does); a send that never left this
process (no connection) is taken back. When the call ends, whatever was reserved and never sent is given back: at
once, or, while the database cannot take it, by the ledger in the background as soon as it can (`Ledger.later`,
which also records what a request could not, such as a stream's end). What a process that dies takes with it (a
reservation committed and never sent) stays counted: the ledger is over by at most that, never under.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, LiteralString

from backend.db.connection import Connection
from backend.db.units import Database
from backend.domain.limits import SpendQuota
from backend.errors import AccountGone, DatabaseUnavailable, ServerBusy, TooManyRequests
from backend.usage import ledger
from backend.usage.ledger import Allowance, Call

log = logging.getLogger(__name__)

#: How long the ledger keeps trying to write what could not be written when it was due (seconds).
LATER_FOR: Final = 600.0
#: The first pause before trying again, doubled each time up to `_LATER_PAUSE_MAX`.
_LATER_PAUSE: Final = 0.5
_LATER_PAUSE_MAX: Final = 15.0
#: How long closing the ledger waits for what it still has to write, before leaving it (logged).
CLOSE_WAIT: Final = 2.0
#: What a write the database could not take now raises: tried again later.
_NOT_NOW = (DatabaseUnavailable, TooManyRequests, ServerBusy)

Later = Callable[[Connection], Awaitable[object]]
"""Work the ledger writes later, on a service transaction of its own."""


class Ledger:
    """A process's charging of provider calls: the database, the quota every call is held to, and what is still to be
    written (see the module docstring). One per process, closed with it (`aclose`)."""

    def __init__(self, db: Database, quota: SpendQuota) -> None:
        self.db = db
        self.quota = quota
        self._later: set[asyncio.Task[None]] = set()

    async def reserve(self, conn: Connection, call: Call) -> Allowance:
        """Reserve `call`'s first send on `conn`'s transaction (as the service), which must commit before the call is
        made through `charge`; QuotaExceeded when it would pass the quota (nothing written)."""
        return await ledger.reserve(conn, call, self.quota)

    async def reserve_and_commit(
        self,
        conn: Connection,
        call: Call,
        *then: tuple[LiteralString, Mapping[str, Any]],
        before: Sequence[tuple[LiteralString, Mapping[str, Any]]] = (),
    ) -> Allowance:
        """`reserve` as the last statement of a unit's transaction, with its COMMIT in the same round trip
        (`backend.usage.ledger.reserve_and_commit`)."""
        return await ledger.reserve_and_commit(conn, call, self.quota, *then, before=before)

    def charge(self, call: Call) -> Charge:
        """The charge of a call whose first send is reserved and committed: enter it around the call, and hand it to
        the adapter as the call's `meter`."""
        return Charge(self, call)

    async def release(self, call: Call, sends: int | None) -> None:
        """Give back `sends` sends of `call` (None: all) reserved and never made: now, or as soon as the database
        takes it."""
        try:
            async with self.db.service_statement() as conn:
                await ledger.release(conn, call, sends, self.quota)
        except _NOT_NOW:
            self.later(f"the release of {call.kind} {call.work_id} {call.call_key}", self._releasing(call, sends))

    def _releasing(self, call: Call, sends: int | None) -> Later:
        async def release(conn: Connection) -> None:
            await ledger.release(conn, call, sends, self.quota)

        return release

    def later(self, what: str, work: Later) -> None:
        """Write `work` as soon as the database takes it, on a service transaction of its own, tried again with a
        growing pause for `LATER_FOR` seconds (then logged as lost); `what` names it in the log."""
        # A context of its own: no request's budget or deadline governs it.
        task = asyncio.get_running_loop().create_task(self._until_written(what, work), context=contextvars.Context())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _until_written(self, what: str, work: Later) -> None:
        give_up, pause = time.monotonic() + LATER_FOR, _LATER_PAUSE
        while True:
            try:
                async with self.db.service_transaction() as conn:
                    await work(conn)
            except _NOT_NOW:
                if time.monotonic() + pause > give_up:
                    log.warning("usage: %s could not be written in %.0f s; it is lost", what, LATER_FOR)
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LATER_PAUSE_MAX)
            except AccountGone:
                # Erased meanwhile: their ledger and their streams went with them, and there is nothing left to write.
                log.info("usage: %s is moot: its user is gone", what)
                return
            except Exception:
                # A task of its own: what is not caught here would be lost without a word.
                log.exception("usage: %s failed; it is lost", what)
                return
            else:
                log.info("usage: %s written once the database took it", what)
                return

    def pending(self) -> int:
        """How many writes are waiting for the database."""
        return len(self._later)

    async def aclose(self) -> None:
        """Give what is still to be written `CLOSE_WAIT` seconds, then leave it (logged)."""
        if not self._later:
            return
        _, left = await asyncio.wait(set(self._later), timeout=CLOSE_WAIT)
        for task in left:
            task.cancel()
        if left:
            log.warning("usage: %d writes were left unwritten as the process stopped", len(left))
            await asyncio.gather(*left, return_exceptions=True)


class Charge:
    """One provider call's text, charged send by send (a `SendMeter`): `reserved` sends reserved in the ledger, `made`
    of them sent (or possibly sent: an answer lost after the request left counts). Its first send was reserved by
    the caller; leaving the block gives back what was reserved and not made."""

    __slots__ = ("_ledger", "call", "made", "reserved")

    def __init__(self, ledger: Ledger, call: Call) -> None:
        self._ledger = ledger
        self.call = call
        self.reserved = 1
        self.made = 0

    @property
    def characters(self) -> int:
        """The characters the provider was sent (or may have been) for this call."""
        return self.made * self.call.characters

    async def before_send(self) -> None:
        """Reserve the next send unless one reserved is still unmade (QuotaExceeded, TooManyRequests or
        DatabaseUnavailable stop it unsent)."""
        if self.made >= self.reserved:
            async with self._ledger.db.service_statement() as conn:
                await ledger.reserve_resend(conn, self.call, self._ledger.quota)
            self.reserved += 1
        self.made += 1

    def not_sent(self) -> None:
        """The send announced last never reached the provider: its reservation waits for the next."""
        self.made -= 1

    async def __aenter__(self) -> Charge:
        return self

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        unsent = self.reserved - self.made
        if unsent > 0:
            await self._ledger.release(self.call, None if self.made == 0 else unsent)
