"""The requests one process may have in flight with one provider at once (VOICEGATE_PROVIDER_CONCURRENCY).

A provider's plan allows a few requests at once (ElevenLabs 2-15 by tier, Cartesia 2-15) and answers the next with
a 429. The API's syntheses and the worker's enrolments, look-ups and probes meet the same plan, so the process holds
them all to one number per provider: a request beyond it waits here for a slot, as for a pooled connection, instead
of costing a round trip and a backoff. Speech streams take none (`ProviderHttp.streaming`): one holds its request for
as long as it plays, and VOICEGATE_USER_STREAMS bounds them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import Counter, Gauge

IN_FLIGHT = Gauge(
    "voicegate_provider_requests_in_flight",
    "Requests this process has in flight with a provider (speech streams not counted)",
    ("provider",),
    multiprocess_mode="livesum",
)
WAITED = Counter(
    "voicegate_provider_slot_waits_total",
    "Requests that found every slot of VOICEGATE_PROVIDER_CONCURRENCY taken, by how their wait ended",
    ("provider", "outcome"),
)


class NoSlot(Exception):
    """No slot freed within the wait: the request was not sent."""


class ProviderSlots:
    """`size` slots for one provider's requests, handed out in the order they were asked for."""

    def __init__(self, provider: str, size: int) -> None:
        if size < 1:
            raise ValueError("a provider needs at least one slot")
        self.provider = provider
        self.size = size
        self._free = asyncio.Semaphore(size)
        self.waiting = 0
        """Requests waiting for a slot now."""
        self._in_flight = IN_FLIGHT.labels(provider)
        self._got = WAITED.labels(provider, "got")
        self._timed_out = WAITED.labels(provider, "timed_out")

    @contextlib.asynccontextmanager
    async def held(self, wait_s: float | None) -> AsyncIterator[None]:
        """A slot for the block; NoSlot when none frees within `wait_s` seconds (None: however long it takes)."""
        if self._free.locked():
            self.waiting += 1
            try:
                async with asyncio.timeout(wait_s):
                    await self._free.acquire()
            except TimeoutError:
                self._timed_out.inc()
                raise NoSlot(
                    f"all {self.size} slots of VOICEGATE_PROVIDER_CONCURRENCY for {self.provider} stayed taken"
                    f" for {wait_s:g} s"
                ) from None
            finally:
                self.waiting -= 1
            self._got.inc()
        else:
            await self._free.acquire()
        self._in_flight.inc()
        try:
            yield
        finally:
            self._in_flight.dec()
            self._free.release()
