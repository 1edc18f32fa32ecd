"""The one place voicegate replaces a private method of Litestar: `KwargsModel.resolve_dependencies`, so
that a handler's dependencies are resolved one after another in the request's own task.

Litestar resolves each batch of independent dependencies in an anyio task group
(https://github.com/litestar-org/litestar/issues/4563, open), which for a handler taking `claims`, `db`
and `storage` costs more than half of what a bare request does; ours are app-state lookups
and a token check, none of which gains from concurrency. No public setting or form of `Provide` avoids the
task group: any two dependencies a handler takes that do not depend on each other form such a batch.

Upstream source: https://github.com/litestar-org/litestar/blob/v2.25.0/litestar/_kwargs/kwargs_model.py
(`KwargsModel.resolve_dependencies`). tests/unit/api/test_dependency_order.py fails if Litestar changes
what this relies on (the method's signature, `dependency_batches`, `resolve_dependency`), and once
upstream stops using a task group, so that this override is deleted.
"""

from __future__ import annotations

from typing import Any

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection

UPSTREAM_RESOLVE = KwargsModel.resolve_dependencies
"""Litestar's own method, as this module replaces it (for the test that watches upstream)."""


async def _resolve_in_order(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    """`KwargsModel.resolve_dependencies`, one dependency after another."""
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


def resolve_dependencies_in_order() -> None:
    """Make Litestar resolve a handler's dependencies one after another (see the module docstring)."""
    KwargsModel.resolve_dependencies = _resolve_in_order  # type: ignore[method-assign]
