"""A request's database budget is its own (issue 45): a request reached in-process from it, in its task, shares
it; a context that still holds it after the request ended (asyncio leaks a task's context into a connection's
reader, CPython #140947) is no request's, and the next request in it starts a budget of its own."""

from __future__ import annotations

import asyncio
import contextvars

from backend.db.deadline import RequestBudget, current_budget, request_budget


async def test_a_request_reached_in_process_shares_the_budget_of_the_request_it_serves() -> None:
    with request_budget(1.0) as outer:
        outer.stalled = 0.4
        with request_budget(1.0) as inner:
            assert inner is outer
            assert current_budget() is outer
        assert not outer.ended, "the inner request's end is not the outer's"
        assert current_budget() is outer
    assert outer.ended
    assert current_budget() is None


async def test_a_budget_leaked_past_its_request_is_not_taken_over_by_the_next_one() -> None:
    leaked: list[contextvars.Context] = []
    spent: list[RequestBudget] = []

    async def request_that_spends_its_budget() -> None:
        with request_budget(1.0) as budget:
            budget.stalled = 1.5  # waited out an outage
            spent.append(budget)
            # What asyncio's transport does when this task resumes reading a paused connection.
            leaked.append(contextvars.copy_context())

    await asyncio.create_task(request_that_spends_its_budget())

    async def next_request_on_that_connection() -> tuple[RequestBudget | None, RequestBudget]:
        found = current_budget()
        with request_budget(1.0) as budget:
            return found, budget

    found, budget = await asyncio.create_task(next_request_on_that_connection(), context=leaked[0].copy())
    assert found is None, "an ended request's budget is nobody's"
    assert budget is not spent[0]
    assert budget.left() == 1.0


async def test_a_task_started_from_a_request_does_not_take_its_budget_over_as_a_request() -> None:
    with request_budget(1.0) as outer:

        async def request_in_another_task() -> RequestBudget:
            with request_budget(2.0) as budget:
                return budget

        assert (await asyncio.create_task(request_in_another_task())) is not outer
