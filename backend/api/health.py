"""Liveness and readiness probes."""

from __future__ import annotations

import msgspec
from litestar import get

from backend.api.deps import DbPool
from backend.db.pool import ping


class Health(msgspec.Struct):
    """Probe answer."""

    status: str


@get("/healthz", sync_to_thread=False, summary="Liveness: the process is up")
def healthz() -> Health:
    """Answer while the process runs, whatever its dependencies do."""
    return Health(status="ok")


@get("/readyz", summary="Readiness: the database answers")
async def readyz(pool: DbPool) -> Health:
    """200 when the database answers a query, else 503 (problem+json with Retry-After)."""
    await ping(pool)
    return Health(status="ready")


health_routes = [healthz, readyz]
