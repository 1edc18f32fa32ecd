"""How many requests each user has in flight in this API process, and the limit on it
(VOICEGATE_USER_CONCURRENCY): one user's burst is answered 429 with Retry-After at the door instead of
queueing for the database connections every user shares."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from backend.errors import ConcurrencyLimited


class UserConcurrency:
    """Counts each user's requests in flight; refuses one past `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: Counter[str] = Counter()

    @contextmanager
    def slot(self, user: str) -> Iterator[None]:
        """Hold one of `user`'s slots for the body; ConcurrencyLimited when they are all taken."""
        if self._in_flight[user] >= self.limit:
            raise ConcurrencyLimited
        self._in_flight[user] += 1
        try:
            yield
        finally:
            self._in_flight[user] -= 1
            if not self._in_flight[user]:
                del self._in_flight[user]  # a user with nothing in flight takes no room
