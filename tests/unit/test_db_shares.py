"""Each user's share of an API process's database connections (`backend.db.shares`): one user's units hold at most
their share and wait in a line of their own past it; a connection that comes back goes to the waiting user who holds
the fewest; a wait ends at its timeout as the pool's own would; nobody's work and nested work are held to no share."""

from __future__ import annotations

import asyncio

import pytest
from psycopg_pool import PoolTimeout

from backend.db.shares import Shares


async def waiting(shares: Shares, owner: str | None, *, capped: bool = True) -> asyncio.Task[None]:
    """`owner`'s `take`, started and left waiting (it did not get a place at once)."""
    task = asyncio.create_task(shares.take(owner, 10, capped=capped))
    await asyncio.sleep(0)  # to its first wait
    assert not task.done()
    return task


async def test_a_users_units_past_their_share_wait_while_another_users_take_a_place_at_once() -> None:
    shares = Shares(capacity=4, share=2)
    for _ in range(2):
        await shares.take("flood", 10)
    third = await waiting(shares, "flood")

    await asyncio.wait_for(shares.take("other", 10), 0.1)  # not behind the flood's line

    assert (shares.held("flood"), shares.held("other")) == (2, 1)
    shares.give_back("flood")
    await asyncio.wait_for(third, 1)
    assert shares.held("flood") == 2


async def test_a_place_that_comes_back_goes_to_the_waiting_user_who_holds_fewest() -> None:
    shares = Shares(capacity=3, share=3)
    for _ in range(3):
        await shares.take("flood", 10)
    floods = [await waiting(shares, "flood") for _ in range(3)]
    other = await waiting(shares, "other")  # came last

    shares.give_back("flood")
    await asyncio.sleep(0)

    assert other.done()  # it holds none, the flood two: it goes first though it waited least
    assert not any(task.done() for task in floods)
    shares.give_back("flood")
    await asyncio.sleep(0)
    assert floods[0].done()  # the flood's own line, first come first served
    assert not floods[1].done()
    for task in floods[1:]:
        task.cancel()


async def test_a_wait_past_its_timeout_is_the_pools_timeout_and_leaves_nothing_held() -> None:
    shares = Shares(capacity=1, share=1)
    await shares.take("flood", 10)
    with pytest.raises(PoolTimeout):
        await shares.take("flood", 0.05)
    with pytest.raises(PoolTimeout):
        await shares.take("other", 0)  # no place free, and no time to wait for one

    shares.give_back("flood")
    await asyncio.wait_for(shares.take("other", 10), 0.1)  # the timed-out waits hold no place
    assert (shares.held("flood"), shares.held("other")) == (0, 1)


async def test_nobodys_work_and_nested_work_are_held_to_no_share() -> None:
    shares = Shares(capacity=4, share=1)
    await shares.take("user", 10)
    await asyncio.wait_for(shares.take("user", 10, capped=False), 0.1)  # its unit already holds one
    await asyncio.wait_for(shares.take(None, 10), 0.1)
    await asyncio.wait_for(shares.take(None, 10), 0.1)
    assert (shares.held("user"), shares.held(None)) == (2, 2)
    held_back = await waiting(shares, None)  # the pool is full: nobody's work waits too
    shares.give_back("user")
    await asyncio.wait_for(held_back, 1)
