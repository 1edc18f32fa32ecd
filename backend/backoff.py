"""How long a worker waits before trying its work again: exponential backoff with jitter, a plain function of
the retry's number and the schedule's bounds, so a step reads its schedule as values and calls nothing above it."""

from __future__ import annotations

import random


def retry_delay(retry_count: int, *, base_seconds: float, max_seconds: float) -> float:
    """Seconds to wait before the `retry_count`-th retry (1-based): at most `base_seconds` doubled for each retry
    before it, capped at `max_seconds`, and at least half that, at random."""
    ceiling = min(max_seconds, base_seconds * 2 ** max(0, retry_count - 1))
    # Spread so that the retries of work that failed together do not come back together.
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
