"""Each user's share of an API process's database connections.

The units of work a request runs take their connections for the request's user (`owned_by`, which the entry
check sets once it has verified the caller). One user's units hold at most `share` of the pool's connections at
once (half of them in the API); their next ones wait in a line of the user's own. When a connection comes back it
goes to the user, among those waiting, who holds the fewest, so that another user's request waits for at most
one connection to come back, never behind one user's burst: a flood of requests each holding a connection while
it waits for that user's own lock (their jobs', their usage counter's) keeps its connections to its share.

A wait in the user's own line that runs out is not taken for the database not answering (`OwnLine`): their units
may all be waiting on a lock of theirs held in another process, so that nobody here hears from the database for a
while; past the busy wait the user is answered 429, never 503.

Work that is no user's (a probe, the ledger's later writes, a worker's) is counted among the connections in use,
and held to no share. A unit taken while its task already holds one (work nested in a unit, or the tasks a unit
waits for) is held to no share either: it would otherwise wait for its user's own connections to come back, one of
which is its caller's.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from psycopg_pool import PoolTimeout

#: The user whose request the units of work in this context serve (None: nobody's).
OWNER: ContextVar[str | None] = ContextVar("voicegate.db.owner", default=None)


@contextmanager
def owned_by(owner: str) -> Iterator[None]:
    """Take the connections of the block's units of work (and of the tasks it starts) for `owner`."""
    token = OWNER.set(owner)
    try:
        yield
    finally:
        OWNER.reset(token)


class OwnLine(PoolTimeout):
    """A wait that ran out in the user's own line, their units holding their share: it says nothing of whether the
    database answers (their units may all be waiting on a lock of theirs), only that the user is busy."""


@dataclass(eq=False)
class _Waiter:
    seq: int
    future: asyncio.Future[None] = field(repr=False)


class Shares:
    """Who holds how many of `capacity` connections; a user's units past `share` wait in the user's own line.

    `take` and `give_back` pair up, one each per connection (`backend.db.units` calls them around the pool's
    `getconn` and `putconn`), so that no more than `capacity` are handed out and the pool's own queue stays
    empty."""

    def __init__(self, capacity: int, share: int) -> None:
        self.capacity = capacity
        self.share = max(1, min(share, capacity))
        self._total = 0
        self._held: Counter[str | None] = Counter()
        #: Each line of waiters, by (owner, capped), in the order they came.
        self._lines: dict[tuple[str | None, bool], deque[_Waiter]] = {}
        self._seq = itertools.count()

    def held(self, owner: str | None) -> int:
        """Connections `owner`'s units hold now."""
        return self._held[owner]

    async def take(self, owner: str | None, timeout: float, *, capped: bool = True) -> None:  # noqa: ASYNC109 - the pool's wait, in its terms
        """A place for one of `owner`'s units, waited for up to `timeout` seconds (PoolTimeout past it, OwnLine when
        the owner held their share all the while it ran out); `capped` (and an owner): held to the share."""
        capped = capped and owner is not None
        if self._total < self.capacity and not (capped and self._held[owner] >= self.share):
            # Nobody who could take a place waits (`_hand_over` leaves none while one is free).
            self._grant(owner)
            return
        if timeout <= 0:
            raise PoolTimeout("no connection came in time")
        waiter = _Waiter(next(self._seq), asyncio.get_running_loop().create_future())
        line = self._lines.setdefault((owner, capped), deque())
        line.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter.future
        except BaseException as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                self.give_back(owner)  # handed a place as the wait ended another way
            else:
                waiter.future.cancel()
                if waiter in line:
                    line.remove(waiter)
                if not line and self._lines.get((owner, capped)) is line:
                    del self._lines[(owner, capped)]
            if isinstance(exc, TimeoutError):
                if capped and self._held[owner] >= self.share:
                    raise OwnLine("the user's own units hold their share") from None
                raise PoolTimeout("no connection came in time") from None
            raise

    def give_back(self, owner: str | None) -> None:
        """One of `owner`'s places is free again: the next waiter, by the fewest held, takes it."""
        self._total -= 1
        self._held[owner] -= 1
        if self._held[owner] <= 0:
            del self._held[owner]
        self._hand_over()

    def _grant(self, owner: str | None) -> None:
        self._total += 1
        self._held[owner] += 1

    def _hand_over(self) -> None:
        """Hand free places to waiters: each to the line whose owner holds the fewest (the longest waiting first
        among equals), past an owner at their share."""
        while self._total < self.capacity:
            chosen: tuple[str | None, bool] | None = None
            best: tuple[int, int] | None = None
            for key, line in list(self._lines.items()):
                while line and line[0].future.done():  # given up already
                    line.popleft()
                if not line:
                    del self._lines[key]
                    continue
                owner, capped = key
                if capped and self._held[owner] >= self.share:
                    continue
                rank = (self._held[owner], line[0].seq)
                if best is None or rank < best:
                    chosen, best = key, rank
            if chosen is None:
                return
            waiter = self._lines[chosen].popleft()
            if not self._lines[chosen]:
                del self._lines[chosen]
            self._grant(chosen[0])
            waiter.future.set_result(None)
