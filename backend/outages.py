"""Outages of what voicegate depends on (the database, Storage), logged as they start and end instead of
once per failed request.

The code that talks to a dependency reports each failure and each success to that dependency's
`Outage`. The first failure logs at ERROR with its cause and traceback; during the same outage a
failure of a new kind logs its own traceback once; the first success after it logs at WARNING how many
failures the outage caused and how long it lasted. Everything in between is silent, so an outage under
load is a few lines, not a traceback per request, per poll and per retry.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"\d+")
#: Addresses in a cause's message (Storage's errors name the object's URL): which object failed is not a kind.
_URLS = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


class Outage:
    """The availability of one dependency, as the failures and successes reported to it tell it."""

    def __init__(
        self, dependency: str, *, logger: logging.Logger | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.dependency = dependency
        self._log = logger or log
        self._clock = clock
        self._since: float | None = None
        self._failures = 0
        self._kinds: set[str] = set()

    @property
    def down(self) -> bool:
        """Whether the last report was a failure."""
        return self._since is not None

    @property
    def since(self) -> float | None:
        """When (on its clock) the outage now on began; None while the dependency is up."""
        return self._since

    def failed(self, exc: BaseException) -> None:
        """A request to the dependency failed because it is unreachable or hung."""
        kind = _kind(exc)
        self._failures += 1
        if self._since is None:
            self._since = self._clock()
            self._kinds = {kind}
            self._log.error("%s unavailable: %s", self.dependency, cause(exc), exc_info=exc)
        elif kind not in self._kinds:
            self._kinds.add(kind)
            self._log.error("%s still unavailable, now: %s", self.dependency, cause(exc), exc_info=exc)

    def recovered(self, asked_at: float | None = None) -> None:
        """The dependency answered what was asked of it at `asked_at` (on this outage's clock, when known);
        ends an outage, if there was one. An answer to what was asked before the outage began is no sign it
        ended: a dependency going away answers some requests already on their way as it fails others (a
        database shutting down ends its sessions one by one)."""
        if self._since is None or (asked_at is not None and asked_at < self._since):
            return
        self._log.warning(
            "%s available again after %d failed requests over %.1f s",
            self.dependency,
            self._failures,
            self._clock() - self._since,
        )
        self._since, self._failures, self._kinds = None, 0, set()


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from, outermost first."""
    chain = [exc]
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None and inner not in chain:
        chain.append(inner)
    return chain


def cause(exc: BaseException) -> str:
    """The innermost exception's type and first line: what actually went wrong."""
    root = _chain(exc)[-1]
    message = str(root).strip().splitlines()[0] if str(root).strip() else ""
    return f"{type(root).__name__}: {message}" if message else type(root).__name__


def _kind(exc: BaseException) -> str:
    """What tells two failures apart: the types along the chain and the root's message, addresses and numbers
    (URLs, ports, pids, timings) left out so one cause stays one kind."""
    return " <- ".join(type(e).__name__ for e in _chain(exc)) + " | " + _DIGITS.sub("#", _URLS.sub("<url>", cause(exc)))


DATABASE = Outage("database")
"""The database, as every unit of database work (backend.db.units) reports it."""
STORAGE = Outage("storage")
"""Object storage, as the storage client (backend.storage.client) reports it."""
