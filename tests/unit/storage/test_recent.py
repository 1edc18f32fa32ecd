"""backend.storage.recent: answers kept for their seconds, none at 0, the oldest dropped first past the capacity."""

from __future__ import annotations

from backend.storage.recent import RecentAnswers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_kept_for_its_seconds_and_not_at_all_for_none() -> None:
    clock = Clock()
    answers = RecentAnswers[str, int](clock=clock)
    answers.put("a", 1, 2.0)
    answers.put("b", 2, 0)
    assert (answers.holds("a"), answers.get("a"), answers.holds("b")) == (True, 1, False)
    clock.now += 1.99
    assert answers.holds("a")
    clock.now += 0.01
    assert not answers.holds("a")


def test_past_its_capacity_the_oldest_answer_goes_and_a_forgotten_one_is_gone() -> None:
    answers = RecentAnswers[str, int](capacity=2, clock=Clock())
    answers.put("a", 1, 60)
    answers.put("b", 2, 60)
    answers.put("a", 3, 60)  # a fresh answer for "a" makes it the newest
    answers.put("c", 4, 60)
    assert [answers.holds(key) for key in "abc"] == [True, False, True]
    assert answers.get("a") == 3
    answers.forget("c")
    assert not answers.holds("c")
