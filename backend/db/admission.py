"""Admission of one kind of work's requests to the database: refused at once while the database is out of
reach, and let back in gradually once it answers again.

Each kind of work (the API's requests, the Storage stand-in's) has its own pool, so its own bounded share of
connections, and its own `Admission`. While the database answers, everything is admitted and the pool's own
waits apply (`backend.db.units`). Once a unit of work has found it out of reach (`DATABASE` reports an
outage) and nothing in this process has heard from it since, a request is refused on arrival, before its
body is read, with `DatabaseUnavailable` (a 503 with Retry-After): an upload is not received, spooled and
sent to Storage only to fail a second later, and no request queues for a connection that will not come. One
probe (`select 1` on the pool, every `PROBE_EVERY` seconds) watches for the database's return instead.

When it answers again, requests are admitted through a window that opens as they succeed, from
`FIRST_WINDOW` requests in flight, one more for each that ends well, so it doubles with each round of
requests, until it is as wide as the pool; a request that finds the window full waits for a place as long
as a request waits for a connection (`PoolLimits.connect_timeout`), then is refused the same way. The
clients an outage held back, the work it queued and the connections the pool must open again arrive
together; the window keeps them from all reaching the database in the same instant.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import NoReturn

from backend.db.connection import last_answer_at
from backend.db.units import Database
from backend.errors import DatabaseUnavailable, ServerBusy
from backend.outages import DATABASE, Outage

#: Requests in flight admitted first once the database answers again.
FIRST_WINDOW = 4
#: Seconds between probes of a database out of reach.
PROBE_EVERY = 0.25
#: Seconds since the last answer anyone in this process got after which a reported outage is believed: an
#: answer more recent than that means the database answers, and one unit's failure was its own.
SILENCE = 0.5


class Admission:
    """Whether a kind of work's next request may use the database now (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        outage: Outage = DATABASE,
        first_window: int = FIRST_WINDOW,
        probe_every: float = PROBE_EVERY,
        on_refusal: Callable[[], object] | None = None,
    ) -> None:
        self._db = db
        #: Told of each refusal (a metric's counter).
        self._on_refusal = on_refusal
        self._outage = outage
        self._first_window = first_window
        self._probe_every = probe_every
        #: How many admitted requests may be in flight while the ramp runs; None when it does not.
        self.window: int | None = None
        self.in_flight = 0
        #: Places handed to waiters that have not woken to take them yet.
        self._handed = 0
        #: Whether requests were refused since the ramp last ran: the next admitted one starts it.
        self._ramp_due = False
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._probe: asyncio.Task[None] | None = None
        #: Requests refused on arrival.
        self.refused = 0

    @property
    def shut(self) -> bool:
        """Whether the database is believed out of reach: an outage is reported, and nobody in this process
        has heard from the database for `SILENCE` seconds."""
        return self._outage.down and time.monotonic() - last_answer_at() > SILENCE

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Hold a place for one request's work; raise DatabaseUnavailable at once while the database is out of
        reach, or when no place in the ramp's window came in time."""
        if self.shut:
            self._ramp_due = True
            self._refuse("The database is unreachable; retry shortly.")
        if self._ramp_due:
            self._ramp_due = False
            self.window = self._first_window
        if self.window is not None and (self._waiting or self.in_flight + self._handed >= self.window):
            await self._wait_for_place()
        self.in_flight += 1
        failed = False
        try:
            yield
        except (DatabaseUnavailable, ServerBusy):
            failed = True
            raise
        finally:
            self.in_flight -= 1
            self._ended(failed=failed)

    def _refuse(self, message: str) -> NoReturn:
        self.refused += 1
        if self._on_refusal is not None:
            self._on_refusal()
        if self.shut and (self._probe is None or self._probe.done()):
            # In a context of its own: not the refused request's, whose database budget is not the probe's.
            self._probe = asyncio.create_task(self._watch(), name="database-probe", context=contextvars.Context())
        raise DatabaseUnavailable(message)

    async def _wait_for_place(self) -> None:
        """Wait in line for a place in the window, as long as a request waits for a connection."""
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        try:
            async with asyncio.timeout(self._db.pool.timeout):
                await place
        except BaseException as exc:
            if place.done() and not place.cancelled():
                self._handed -= 1  # handed over as the wait ended another way: the next in line has it
                self._hand_over()
            elif place in self._waiting:  # a hand-over may have passed it by already, cancelled
                self._waiting.remove(place)
            if isinstance(exc, TimeoutError):
                self._refuse("The database is coming back; retry shortly.")
            raise
        self._handed -= 1

    def _ended(self, *, failed: bool) -> None:
        if self.window is not None and not failed:
            self.window += 1
            if self.window >= self._db.pool.max_size:
                self.window = None
        self._hand_over()

    def _hand_over(self) -> None:
        """Give the places the window has free to those waiting, first come first served."""
        while self._waiting and (self.window is None or self.in_flight + self._handed < self.window):
            place = self._waiting.popleft()
            if not place.done():
                place.set_result(None)
                self._handed += 1

    async def _watch(self) -> None:
        """Probe until the database answers (its answer ends the outage, `backend.db.units`)."""
        while True:
            try:
                await self._db.ping()
            except DatabaseUnavailable:
                await asyncio.sleep(self._probe_every)
                continue
            except ServerBusy:
                pass  # busy with others' work: it answers
            return

    async def aclose(self) -> None:
        """Stop probing (the app is shutting down)."""
        if self._probe is not None:
            self._probe.cancel()
            with suppress(asyncio.CancelledError):
                await self._probe
