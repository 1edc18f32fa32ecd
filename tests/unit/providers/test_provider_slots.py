"""A provider's slots (VOICEGATE_PROVIDER_CONCURRENCY): at most that many requests in flight, the rest served in the
order they asked, a wait that runs out is a transient error of a request never sent, and a stream takes none."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import httpx
import pytest
from prometheus_client import REGISTRY

from backend.providers import http as provider_http
from backend.providers.errors import ProviderError, TransientProviderError
from backend.providers.http import BUSY_MESSAGE, ProviderHttp, RetryPolicy
from backend.providers.slots import NoSlot, ProviderSlots

pytestmark = pytest.mark.timeout(30)


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until `condition` holds (at most 5 s)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the slots' and the transport's counts have no event to wait on
            await asyncio.sleep(0)


def waits(provider: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("voicegate_provider_slot_waits_total", {"provider": provider, "outcome": outcome})
        or 0.0
    )


def in_flight(provider: str) -> float:
    return REGISTRY.get_sample_value("voicegate_provider_requests_in_flight", {"provider": provider}) or 0.0


async def test_no_more_than_its_size_hold_a_slot_and_the_waiting_are_served_in_order() -> None:
    slots = ProviderSlots("slots-order", 2)
    release = asyncio.Event()
    holding: list[int] = []
    order: list[int] = []
    most = 0

    async def request(n: int) -> None:
        nonlocal most
        async with slots.held(None):
            holding.append(n)
            order.append(n)
            most = max(most, len(holding))
            await release.wait()
            holding.remove(n)

    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(request(n)))
        await asyncio.sleep(0)  # each asks before the next
    await until(lambda: len(holding) == 2)
    assert sorted(holding) == [0, 1]
    assert in_flight("slots-order") == 2
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2
    assert order == [0, 1, 2, 3, 4, 5]
    assert waits("slots-order", "got") == 4
    assert in_flight("slots-order") == 0


async def test_a_wait_that_runs_out_says_so_and_gives_back_nothing_it_did_not_take() -> None:
    slots = ProviderSlots("slots-timeout", 1)
    async with slots.held(None):
        with pytest.raises(NoSlot, match="all 1 slots of VOICEGATE_PROVIDER_CONCURRENCY for slots-timeout"):
            async with slots.held(0.05):
                pytest.fail("the block ran without a slot")
    assert waits("slots-timeout", "timed_out") == 1
    # The slot the holder gave back is free, and only one: a second holder still waits.
    async with slots.held(0.05):
        with pytest.raises(NoSlot):
            async with slots.held(0.01):
                pass


async def test_a_cancelled_request_gives_its_slot_back() -> None:
    slots = ProviderSlots("slots-cancel", 1)
    entered = asyncio.Event()

    async def hold() -> None:
        async with slots.held(None):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with slots.held(0.05):
        assert in_flight("slots-cancel") == 1


def test_a_provider_has_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        ProviderSlots("slots-none", 0)


def classify(response: httpx.Response) -> ProviderError:
    return TransientProviderError("p", "busy", http_status=response.status_code)


class SlowTransport(httpx.AsyncBaseTransport):
    """Answers after `gate` opens, counting the requests it has at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.now = 0
        self.most = 0
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await self.gate.wait()
        finally:
            self.now -= 1
        return httpx.Response(200, content=b"audio")


def sender(transport: SlowTransport, slots: ProviderSlots) -> ProviderHttp:
    async def no_sleep(seconds: float) -> None:
        return None

    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0))
    return ProviderHttp(
        "p",
        client,
        "https://api.test",
        {},
        classify,
        policy=RetryPolicy(max_attempts=1),
        rng=random.Random(1),  # noqa: S311 - seeded jitter
        sleep=no_sleep,
        slots=slots,
    )


async def test_requests_beyond_the_slots_wait_and_are_then_sent() -> None:
    transport = SlowTransport()
    slots = ProviderSlots("slots-http", 3)
    http = sender(transport, slots)
    calls = [asyncio.create_task(http.request("POST", f"/tts/{n}")) for n in range(9)]
    await until(lambda: transport.now == 3 and slots.waiting == 6)
    assert len(transport.paths) == 3  # the other six wait here, unsent
    transport.gate.set()
    answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200] * 9
    assert transport.most == 3
    await http.client.aclose()


async def test_a_request_that_finds_no_slot_in_the_pool_wait_is_busy_and_unsent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provider_http, "POOL_WAIT_S", 0.05)
    transport = SlowTransport()
    http = sender(transport, ProviderSlots("slots-busy", 1))
    first = asyncio.create_task(http.request("POST", "/tts/first"))
    await until(lambda: transport.now == 1)
    with pytest.raises(TransientProviderError) as raised:
        await http.request("POST", "/tts/second")
    assert raised.value.safe_message == BUSY_MESSAGE
    assert "VOICEGATE_PROVIDER_CONCURRENCY" in (raised.value.operator_detail or "")
    assert transport.paths == ["/tts/first"]
    transport.gate.set()
    await first
    await http.client.aclose()


async def test_a_stream_takes_no_slot() -> None:
    transport = SlowTransport()
    http = sender(transport, ProviderSlots("slots-stream", 1))
    held = asyncio.create_task(http.request("POST", "/tts/held"))
    await until(lambda: transport.now == 1)

    async def stream() -> bytes:
        async with http.streaming("POST", "/tts/stream") as response:
            return await response.aread()

    streamed = asyncio.create_task(stream())
    await until(lambda: transport.now == 2)
    assert transport.paths == ["/tts/held", "/tts/stream"]
    transport.gate.set()
    assert await streamed == b"audio"
    await held
    await http.client.aclose()
