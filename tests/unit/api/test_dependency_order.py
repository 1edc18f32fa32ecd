"""Litestar resolves a handler's dependencies in the request's own task, one after another
(`backend.http.pipeline.dependency_order.resolve_dependencies_in_order`), with values, sub-dependencies and generator
cleanup as before."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from backend.http.pipeline.dependency_order import UPSTREAM_RESOLVE, resolve_dependencies_in_order


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


def test_the_private_names_the_override_uses_keep_their_shape() -> None:
    assert list(inspect.signature(UPSTREAM_RESOLVE).parameters) == ["self", "connection", "kwargs"]
    assert "dependency_batches" in KwargsModel.__slots__
    assert list(inspect.signature(resolve_dependency).parameters) == [
        "dependency",
        "connection",
        "kwargs",
        "cleanup_group",
    ]


async def test_upstream_still_resolves_a_batch_in_a_task_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """When this fails, litestar#4563 is fixed: delete backend/http/pipeline/dependency_order.py."""
    monkeypatch.setattr(KwargsModel, "resolve_dependencies", UPSTREAM_RESOLVE)
    tasks: dict[str, asyncio.Task[object] | None] = {}

    async def first() -> int:
        tasks["first"] = asyncio.current_task()
        return 1

    async def second() -> int:
        tasks["second"] = asyncio.current_task()
        return 2

    @get("/", dependencies={"first": Provide(first), "second": Provide(second)})
    async def handler(first: NamedDependency[int], second: NamedDependency[int]) -> int:
        tasks["handler"] = asyncio.current_task()
        return first + second

    async with AsyncTestClient(Litestar([handler], logging_config=None)) as client:
        response = await client.get("/")
    assert response.json() == 3
    assert tasks["first"] is not tasks["handler"], "Litestar resolves a batch in the request's task now"
    assert tasks["second"] is not tasks["handler"]
