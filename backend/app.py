"""The Litestar application factory; its lifespan owns the connection pool and the JWKS client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from backend.auth.verify import TokenVerifier
from backend.db.pool import create_pool
from backend.errors import Unauthorized
from backend.problem import problem_response
from backend.routes.clone import CloneController
from backend.routes.health import health_routes
from backend.routes.reflections import ReflectionsController
from backend.routes.voices import VoicesController
from backend.settings import Settings
from backend.storage.client import SupabaseObjectStorage
from backend.storage.routes import storage_router

# httpx logs every request URL at INFO, and signed Storage URLs carry their token in the query.
logging.getLogger("httpx").setLevel(logging.WARNING)

# What Supabase's hosted Storage allows on the free plan; buckets narrow it further.
GLOBAL_FILE_SIZE_LIMIT = 50 * 1024**2


def create_app(settings: Settings, dsn: str) -> Litestar:
    """Build the app for `settings` (with auth settings, see `with_auth`), talking to `dsn`.

    In embedded mode the app also serves the Storage stand-in under `/storage/v1`, so the stock
    Supabase storage client works against it exactly as against a Supabase project.
    """
    if settings.auth is None:
        raise ValueError("create_app needs settings with auth (backend.settings.with_auth)")
    pool = create_pool(dsn, settings)
    jwks_http = httpx.AsyncClient(timeout=settings.auth.jwks_timeout, follow_redirects=False)
    verifier = TokenVerifier(settings.auth, jwks_http)
    handlers: list[Any] = [
        *health_routes,
        ReflectionsController,
        VoicesController,
        CloneController,
        PrometheusController,
    ]
    # group_path: label by route template, not by concrete path, so ids cannot explode cardinality.
    metrics = PrometheusConfig(app_name="voicegate", prefix="voicegate", group_path=True, exclude=["/metrics"])
    if settings.embedded:
        handlers.append(_embedded_storage(settings, pool, verifier))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # wait=False: the API starts (and answers /readyz with 503) even while the database is down.
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.verifier = verifier
        app.state.settings = settings
        app.state.storage = _storage_client(settings, app)
        try:
            yield
        finally:
            await app.state.storage.aclose()
            await pool.close()
            await jwks_http.aclose()

    return Litestar(
        route_handlers=handlers,
        middleware=[metrics.middleware],
        lifespan=[lifespan],
        exception_handlers={Exception: problem_response},
        openapi_config=OpenAPIConfig(title="voicegate", version="0.1.0", path="/schema"),
        # Logging is configured once by the entry point (VOICEGATE_LOG_LEVEL); Litestar's default
        # config would reset the root logger to INFO with its own format.
        logging_config=None,
        debug=False,
    )


def _storage_client(settings: Settings, app: Litestar) -> SupabaseObjectStorage:
    """The one storage client: Supabase Storage, or in embedded mode our own `/storage/v1` reached
    in-process through the same HTTP client code (no socket, no dependency on the bind address)."""
    auth = settings.auth
    key = auth.secret_key or auth.service_role_key if auth else None
    if key is None:
        raise ValueError("the storage client needs SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY")
    if settings.embedded:
        return SupabaseObjectStorage(
            "http://voicegate.internal/storage/v1",
            key.reveal(),
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]  # Litestar is an ASGI app; its scope types are narrower than httpx's
        )
    return SupabaseObjectStorage(settings.storage_public_url, key.reveal())


def _embedded_storage(settings: Settings, pool: Any, verifier: TokenVerifier) -> Router:
    secret = settings.auth.jwt_secret if settings.auth else None
    if secret is None:
        raise ValueError("embedded Storage signs its URL tokens with the project JWT secret, which is unset")

    async def caller_claims(token: str) -> Mapping[str, Any]:
        """A user's access token, or the service key (Storage accepts both, as Supabase does)."""
        try:
            return (await verifier.verify_user(token)).raw
        except Unauthorized:
            verifier.verify_service(token)
            return {"role": "service_role"}

    return storage_router(
        pool,
        secret.reveal(),
        settings.data_dir / "storage",
        caller_claims,
        global_file_size_limit=GLOBAL_FILE_SIZE_LIMIT,
    )
