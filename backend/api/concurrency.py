"""How many requests each user has in flight in this API process, and the limit on it
(VOICEGATE_USER_CONCURRENCY): one user's burst is answered 429 with Retry-After at the door instead of
queueing for the database connections every user shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from backend.errors import ConcurrencyLimited


class UserConcurrency:
    """Counts each user's requests in flight; refuses one past `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: dict[str, int] = {}

    def in_flight(self, user: str) -> int:
        """The user's requests in flight now."""
        return self._in_flight.get(user, 0)

    @contextmanager
    def slot(self, user: str) -> Iterator[None]:
        """Hold one of `user`'s slots for the body; ConcurrencyLimited when they are all taken."""
        held = self._in_flight.get(user, 0)
        if held >= self.limit:
            raise ConcurrencyLimited
        self._in_flight[user] = held + 1
        try:
            yield
        finally:
            left = self._in_flight[user] - 1
            if left:
                self._in_flight[user] = left
            else:
                del self._in_flight[user]
