"""The Litestar application factory; its lifespan owns the connection pool and the token verifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from litestar.openapi import OpenAPIConfig

from backend.auth.verify import TokenVerifier
from backend.db.pool import create_pool
from backend.problem import problem_response
from backend.routes.health import health_routes
from backend.routes.reflections import ReflectionsController
from backend.routes.voices import VoicesController
from backend.settings import Settings


def create_app(settings: Settings, dsn: str) -> Litestar:
    """Build the app for `settings` (with auth settings, see `with_auth`), talking to `dsn`."""
    if settings.auth is None:
        raise ValueError("create_app needs settings with auth (backend.settings.with_auth)")
    auth = settings.auth
    pool = create_pool(dsn, settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # wait=False: the API starts (and answers /readyz with 503) even while the database is down.
        await pool.open(wait=False)
        async with httpx.AsyncClient(timeout=auth.jwks_timeout, follow_redirects=False) as jwks_http:
            app.state.pool = pool
            app.state.verifier = TokenVerifier(auth, jwks_http)
            try:
                yield
            finally:
                await pool.close()

    return Litestar(
        route_handlers=[*health_routes, ReflectionsController, VoicesController],
        lifespan=[lifespan],
        exception_handlers={Exception: problem_response},
        openapi_config=OpenAPIConfig(title="voicegate", version="0.1.0", path="/schema"),
        debug=False,
    )
