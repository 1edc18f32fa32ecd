"""The Storage stand-in as a server of its own (`voicegate storage`), for a stack on DATABASE_URL without a
Supabase project (compose, Kubernetes): its API and workers reach it at SUPABASE_URL as they would Supabase
Storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar

from backend.app import behind_the_exchange, storage_signing_secret
from backend.compose.api import route_parts, storage_server
from backend.http.pipeline.db_admission import DatabaseAdmissionMiddleware
from backend.http.pipeline.host import HostCheckMiddleware
from backend.http.pipeline.problem import problem_response
from backend.http.routes.health import healthz
from backend.settings import Settings
from standins.storage.in_process import api_storage_router
from standins.storage.routes import storage_errors_under


def create_storage_app(settings: Settings, dsn: str) -> Litestar:
    """`/storage/v1` and `/healthz`, over a pool of its own on `dsn`, with its objects under the data directory.

    One such server holds the files, so it is the only one. Needs `settings` with auth (`with_auth`) holding the
    project JWT secret, which signs its URL tokens as Supabase Storage's does."""
    parts = route_parts(settings, dsn, serves_storage=True)
    if parts.storage_db is None:
        raise ValueError("the Storage stand-in's routes need its database (route_parts(..., serves_storage=True))")
    root = settings.data_dir / "storage"

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with storage_server(parts) as admissions:
            app.state.admissions = admissions
            yield

    app = Litestar(
        route_handlers=[
            healthz,
            api_storage_router(parts.storage_db, parts.verifier, storage_signing_secret(settings), root),
        ],
        middleware=[
            HostCheckMiddleware(),
            DatabaseAdmissionMiddleware(settings.db_timeout),
        ],
        lifespan=[lifespan],
        exception_handlers={Exception: storage_errors_under(problem_response)},
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    return behind_the_exchange(app, settings)
