"""Litestar resolves a handler's dependencies in the request's own task, one after another
(`backend.api.deps.resolve_dependencies_in_order`), with values, sub-dependencies and generator cleanup
as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from backend.api.deps import resolve_dependencies_in_order


async def test_dependencies_run_in_the_request_task_in_order_and_clean_up() -> None:
    resolve_dependencies_in_order()
    tasks: dict[str, asyncio.Task[object] | None] = {}
    events: list[str] = []

    async def first() -> int:
        tasks["first"] = asyncio.current_task()
        events.append("first")
        return 1

    async def second() -> AsyncIterator[int]:
        tasks["second"] = asyncio.current_task()
        events.append("second")
        yield 2
        events.append("second cleaned up")

    def third(first: NamedDependency[int]) -> int:
        events.append("third")
        return first + 2

    @get(
        "/",
        dependencies={
            "first": Provide(first),
            "second": Provide(second),
            "third": Provide(third, sync_to_thread=False),
        },
    )
    async def handler(
        first: NamedDependency[int], second: NamedDependency[int], third: NamedDependency[int]
    ) -> dict[str, object]:
        tasks["handler"] = asyncio.current_task()
        return {"values": [first, second, third]}

    async with AsyncTestClient(Litestar([handler], logging_config=None)) as client:
        response = await client.get("/")
    assert response.json() == {"values": [1, 2, 3]}
    assert tasks["first"] is tasks["second"] is tasks["handler"], "no task group per batch of dependencies"
    assert events.index("third") > events.index("first")
    assert events[-1] == "second cleaned up"
