"""What each state of a consent allows, without a database: which take a recording, and which cover a sample."""

from __future__ import annotations

from typing import get_args

import pytest

from backend.errors import Conflict, ConsentExpired, ConsentNotVerified
from backend.policy.consent import RECORDABLE, State, check_covers_sample, check_recordable

STATES: tuple[State, ...] = get_args(State)


@pytest.mark.parametrize("state", sorted(RECORDABLE))
def test_a_recording_is_taken_while_the_phrase_awaits_one_or_was_not_heard(state: State) -> None:
    check_recordable(state)


def test_an_expired_consent_takes_no_recording_and_says_it_expired() -> None:
    with pytest.raises(ConsentExpired):
        check_recordable("expired")


@pytest.mark.parametrize("state", ["accepted", "verified", "purged"])
def test_a_checkbox_or_verified_consent_takes_no_recording(state: State) -> None:
    with pytest.raises(Conflict) as refused:
        check_recordable(state)
    # An expired consent is the one refusal of its own kind; the rest are plain conflicts.
    assert not isinstance(refused.value, ConsentExpired)


def test_only_a_verified_consent_covers_a_sample() -> None:
    check_covers_sample("verified")
    refusals = {}
    for state in STATES:
        if state == "verified":
            continue
        with pytest.raises((ConsentExpired, ConsentNotVerified)) as refused:
            check_covers_sample(state)
        refusals[state] = type(refused.value)
    assert refusals == {
        "accepted": ConsentNotVerified,
        "awaiting_recording": ConsentNotVerified,
        "rejected": ConsentNotVerified,
        "held": ConsentNotVerified,
        "expired": ConsentExpired,
        "purged": ConsentExpired,
    }


def test_every_state_is_named_once() -> None:
    assert len(set(STATES)) == len(STATES) == 7
    assert set(STATES) >= RECORDABLE
