"""Answers a process keeps for a while: what Storage said about an object, a URL it signed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class RecentAnswers(Generic[K, V]):
    """Answers kept for a while each, bounded: the oldest goes first."""

    def __init__(self, capacity: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        """At most `capacity` answers; `clock` tells their age."""
        self._capacity = capacity
        self._clock = clock
        self._answers: dict[K, tuple[float, V]] = {}

    def holds(self, key: K) -> bool:
        """Whether an answer for `key` is kept and fresh."""
        kept = self._answers.get(key)
        if kept is None:
            return False
        if self._clock() >= kept[0]:
            del self._answers[key]
            return False
        return True

    def get(self, key: K) -> V:
        """The answer kept for `key` (`holds` first)."""
        return self._answers[key][1]

    def put(self, key: K, answer: V, seconds: float) -> None:
        """Keep `answer` for `key`, `seconds` long (not at all for 0)."""
        if seconds <= 0:
            return
        self._answers.pop(key, None)
        if len(self._answers) >= self._capacity:
            del self._answers[next(iter(self._answers))]
        self._answers[key] = (self._clock() + seconds, answer)

    def forget(self, key: K) -> None:
        """Drop the answer for `key`, if any."""
        self._answers.pop(key, None)
