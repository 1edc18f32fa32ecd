"""An erasure item that fails is tried again after a backoff, and reported refused once out of tries (then nothing
brings the erasure back for it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from backend.erasure.step import MAX_TRIES, Item, _Outcomes

CTX: Any = SimpleNamespace(retry_base_seconds=5.0, retry_max_seconds=300.0)


def item(tries: int) -> Item:
    return Item(id=1, kind="provider_voice", target="cartesia", ref="v1", region=None, tries=tries)


def test_a_failure_with_tries_left_stays_pending_and_comes_back_after_its_backoff() -> None:
    outcomes = _Outcomes([])
    outcomes.add(item(0), "pending", "HTTP 503")
    outcomes.again(CTX, item(0), retry_after=None)

    assert outcomes.settled == [{"id": 1, "state": "pending", "error": "HTTP 503"}]
    assert outcomes.wait is not None
    assert 2.5 <= outcomes.wait <= 5.0


def test_a_provider_asking_to_wait_longer_is_waited_for() -> None:
    outcomes = _Outcomes([])
    outcomes.add(item(0), "pending", "HTTP 429")
    outcomes.again(CTX, item(0), retry_after=42.0)

    assert outcomes.wait == 42.0


def test_the_last_try_failing_is_a_refusal_that_brings_nothing_back() -> None:
    outcomes = _Outcomes([])
    outcomes.add(item(MAX_TRIES - 1), "pending", "HTTP 503")
    outcomes.again(CTX, item(MAX_TRIES - 1), retry_after=None)

    assert outcomes.settled == [
        {"id": 1, "state": "refused", "error": f"still failing after {MAX_TRIES} tries: HTTP 503"}
    ]
    assert outcomes.wait is None
