"""The Litestar application factory; its lifespan owns the connection pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from backend.db.pool import create_pool
from backend.problem import problem_response
from backend.routes.health import health_routes
from backend.settings import Settings


def create_app(settings: Settings, dsn: str) -> Litestar:
    """Build the app for `settings`, talking to the database at `dsn`."""
    pool = create_pool(dsn, settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # wait=False: the API starts (and answers /readyz with 503) even while the database is down.
        await pool.open(wait=False)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    return Litestar(
        route_handlers=[*health_routes],
        lifespan=[lifespan],
        exception_handlers={Exception: problem_response},
        openapi_config=OpenAPIConfig(title="voicegate", version="0.1.0", path="/schema"),
        debug=False,
    )
