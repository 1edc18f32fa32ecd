"""A request cancelled while it waits for a pooled connection stays cancelled: psycopg_pool's waiter, on Python
3.11, can raise RuntimeError("Lock is not acquired.") in place of the CancelledError (backend/db/units.py,
`_pool_getconn`), which reached a client under load as a 500 instead of the deadline's 503."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backend.db import units


class LosesTheLock:
    """A pool whose wait, when cancelled, ends as psycopg_pool's does when its condition's lock was lost."""

    shares = None

    def __init__(self) -> None:
        self.waiting = asyncio.Event()

    async def getconn(self, timeout: float) -> Any:  # noqa: ASYNC109 - the pool's signature
        self.waiting.set()
        try:
            await asyncio.sleep(timeout)
        except asyncio.CancelledError:
            raise RuntimeError("Lock is not acquired.") from None
        raise RuntimeError("Lock is not acquired.")


async def test_a_wait_for_a_connection_cancelled_is_a_cancellation_not_a_runtime_error() -> None:
    pool = LosesTheLock()
    waiting = asyncio.create_task(units._getconn(pool, 30.0, capped=False))  # type: ignore[arg-type]
    await pool.waiting.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_the_same_error_outside_a_cancellation_is_not_hidden() -> None:
    with pytest.raises(RuntimeError, match="Lock is not acquired"):
        await units._getconn(LosesTheLock(), 0.0, capped=False)  # type: ignore[arg-type]
