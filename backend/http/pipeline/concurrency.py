"""How many requests (VOICEGATE_USER_CONCURRENCY) and speech streams (VOICEGATE_USER_STREAMS) each user has
in flight in this API process, and the limits on them: one user's burst is answered 429 with Retry-After at
on arrival instead of queueing for the database connections and CPU every user shares."""

from __future__ import annotations

from collections import Counter

from backend.errors import ConcurrencyLimited, TooManyRequests


class Slot:
    """One of a user's places, held until `release` (which gives it back once, however often it is called)."""

    def __init__(self, counts: Counter[str], user: str) -> None:
        self._counts: Counter[str] | None = counts
        self._user = user

    def release(self) -> None:
        """Give the place back."""
        if self._counts is None:
            return
        counts, self._counts = self._counts, None
        counts[self._user] -= 1
        if not counts[self._user]:
            del counts[self._user]  # a user with nothing in flight takes no room


class UserConcurrency:
    """Counts each user's requests (or streams) in flight; refuses one past `limit` with `refusal`."""

    def __init__(self, limit: int, refusal: type[TooManyRequests] = ConcurrencyLimited) -> None:
        self.limit = limit
        self._refusal = refusal
        self._in_flight: Counter[str] = Counter()

    def take(self, user: str) -> Slot:
        """One of `user`'s places, to `release` when done; the refusal (a 429) when they are all taken."""
        if self._in_flight[user] >= self.limit:
            raise self._refusal
        self._in_flight[user] += 1
        return Slot(self._in_flight, user)
