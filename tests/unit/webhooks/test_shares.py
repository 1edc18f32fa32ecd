"""A user's share of the webhook consumer's slots: all they need while their receivers answer quickly, two
at once for a minute after one of their deliveries was slow (or while two have been in hand too long)."""

from __future__ import annotations

from backend.webhooks.step import SLOW_AFTER_S, SLOW_FOR_S, SLOW_USER_SLOTS, DeliveryShares


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_user_whose_receivers_answer_quickly_takes_every_slot() -> None:
    clock = Clock()
    shares = DeliveryShares(clock)
    taken = [shares.take("quick") for _ in range(8)]
    assert None not in taken
    clock.now += 0.5
    for started in taken:
        assert started is not None
        shares.give_back("quick", started)
    assert None not in [shares.take("quick") for _ in range(8)]


def test_deliveries_in_hand_too_long_hold_their_user_to_their_share_and_no_one_else() -> None:
    clock = Clock()
    shares = DeliveryShares(clock)
    hung = [shares.take("hung") for _ in range(SLOW_USER_SLOTS)]
    assert None not in hung
    clock.now += SLOW_AFTER_S + 0.1

    assert shares.take("hung") is None
    assert shares.take("other") is not None


def test_one_slow_delivery_holds_its_user_to_their_share_for_a_while() -> None:
    clock = Clock()
    shares = DeliveryShares(clock)
    started = shares.take("slow")
    assert started is not None
    clock.now += SLOW_AFTER_S + 1
    shares.give_back("slow", started)

    held = [shares.take("slow") for _ in range(SLOW_USER_SLOTS + 1)]
    assert held[-1] is None
    assert None not in held[:-1]

    for began in held[:-1]:
        assert began is not None
        shares.give_back("slow", began)  # quick ones: they do not keep the user slow, nor end it
    again = [shares.take("slow") for _ in range(SLOW_USER_SLOTS + 1)]
    assert again[-1] is None  # still within SLOW_FOR_S of the slow one
    for began in again[:-1]:
        assert began is not None
        shares.give_back("slow", began)

    clock.now += SLOW_FOR_S
    assert None not in [shares.take("slow") for _ in range(SLOW_USER_SLOTS + 1)]
