"""Where a user stands against their quota, as the `RateLimit` fields and a `quota_exceeded` refusal say it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.errors import QuotaExceeded
from backend.usage.ledger import Allowance, duration_words

START = datetime(2026, 11, 27, tzinfo=UTC)


def test_the_fields_name_the_quota_its_window_what_is_left_and_when_it_resets() -> None:
    allowance = Allowance(limit=1000, window_seconds=86400, used=250, window_start=START, reset_in=3600)

    assert allowance.remaining == 750
    assert allowance.headers() == {
        "RateLimit-Policy": '"characters";q=1000;w=86400',
        "RateLimit": '"characters";r=750;t=3600',
    }


def test_what_is_left_is_never_below_zero_after_a_lowered_quota() -> None:
    allowance = Allowance(limit=100, window_seconds=60, used=250, window_start=START, reset_in=12)

    assert allowance.remaining == 0
    assert allowance.headers()["RateLimit"] == '"characters";r=0;t=12'


def test_a_refusal_waits_until_the_window_resets_and_carries_the_fields() -> None:
    allowance = Allowance(limit=1000, window_seconds=86400, used=990, window_start=START, reset_in=42)

    refused = allowance.exceeded(30)

    assert isinstance(refused, QuotaExceeded)
    assert (refused.retry_after, refused.headers) == (42, allowance.headers())
    assert refused.detail == "30 characters would pass your quota of 1000 per 24 h (10 left); it resets in 42 s."


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (42, "42 s"), (59.2, "1 min"), (60, "1 min"), (61, "2 min"), (3600, "1 h"), (66616, "18 h 31 min")],
)
def test_a_wait_is_said_in_hours_and_minutes_never_shorter_than_it_is(seconds: float, words: str) -> None:
    assert duration_words(seconds) == words
