"""Storage that cannot be reached, refused or silent, is `StorageUnavailable` and an outage of Storage,
however long the server would keep a request waiting: a probe answers within its own bound."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from backend.errors import StorageUnavailable
from backend.outages import STORAGE
from backend.storage.client import SupabaseObjectStorage, answers
from fakes import serve


@pytest.fixture(autouse=True)
def storage_outage_ends() -> Iterator[None]:
    """The process-wide Storage outage these tests start is over when they end."""
    yield
    STORAGE.recovered()


async def test_a_call_is_storage_unavailable_by_its_timeout(unreachable_storage: str) -> None:
    async with SupabaseObjectStorage(unreachable_storage, "service-key", timeout=0.5) as storage:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await storage.download("voice-renders", "a/b.wav")
        assert time.monotonic() - started < 3
    assert STORAGE.down


async def test_a_probe_says_no_within_its_bound_whatever_the_clients_timeout(unreachable_storage: str) -> None:
    async with SupabaseObjectStorage(unreachable_storage, "service-key") as storage:  # 30 s per request
        started = time.monotonic()
        assert not await answers(storage, 0.5)
        assert time.monotonic() - started < 3
    assert STORAGE.down


async def test_the_start_up_check_says_why_in_one_line_within_its_bound_and_starts_no_outage(
    unreachable_storage: str,
) -> None:
    async with SupabaseObjectStorage(unreachable_storage, "service-key") as storage:
        started = time.monotonic()
        reason = await storage.unreachable(0.5)
        assert time.monotonic() - started < 3
    assert reason is not None
    assert reason.startswith("ConnectionRefusedError: [Errno 111] Connect call failed") or reason == (
        "no answer within 0.5 s"
    ), reason
    assert not STORAGE.down  # nothing was running yet: no outage to log (with a traceback) or to end


async def test_the_start_up_check_takes_any_answer_for_storage_being_there() -> None:
    async def refuses(_scope: Any, _receive: Any, send: Any) -> None:  # every request: Storage's 403
        body = b'{"statusCode": "403", "error": "Unauthorized", "message": "invalid signature"}'
        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    with serve(refuses) as url:
        async with SupabaseObjectStorage(f"{url}/storage/v1", "wrong-key") as storage:
            assert await storage.unreachable(5) is None
