"""The streams opening: a mark waits until none is (their first bytes handed on, or refused), and never longer
than its limit."""

from __future__ import annotations

import asyncio

from backend.speech.openings import MARK_HOLD_S, Openings

#: How long a test waits at most for what must happen: only a broken count ever waits this long.
BOUND_S = 20.0


async def test_with_none_opening_a_mark_does_not_wait() -> None:
    openings = Openings()

    # A limit no test could wait out: settled must return without it.
    await asyncio.wait_for(openings.settled(limit_s=3600), BOUND_S)

    assert openings.count == 0


async def test_a_mark_waits_until_the_last_opening_has_ended() -> None:
    openings = Openings()
    first, second = openings.begin(), openings.begin()
    waiting = asyncio.create_task(openings.settled(limit_s=3600))

    first.end()
    for _ in range(5):  # let the waiting task run, as far as it can
        await asyncio.sleep(0)
    assert not waiting.done()
    assert openings.count == 1

    second.end()
    await asyncio.wait_for(waiting, BOUND_S)
    assert openings.count == 0


async def test_an_opening_that_never_ends_holds_a_mark_no_longer_than_its_limit() -> None:
    openings = Openings()
    stuck = openings.begin()
    loop = asyncio.get_running_loop()

    started = loop.time()
    await asyncio.wait_for(openings.settled(limit_s=0.05), BOUND_S)

    assert loop.time() - started >= 0.05
    assert stuck.pending
    assert openings.count == 1


async def test_an_opening_ends_once_however_often_it_is_told() -> None:
    openings = Openings()
    kept, ended = openings.begin(), openings.begin()

    ended.end()
    ended.end()

    assert not ended.pending
    assert kept.pending
    assert openings.count == 1


def test_the_hold_stays_short_beside_a_block_of_audio() -> None:
    # A block after the first is 0.5 s of audio: a mark held longer would let a stream fall behind its audio.
    assert 0 < MARK_HOLD_S < 0.25
