"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from backend.api.deps import DbPool
from backend.api.docs import problems
from backend.db.pool import ping


class Health(msgspec.Struct):
    """Probe answer."""

    status: str


@get("/healthz", sync_to_thread=False, summary="Liveness: the process is up", responses=problems(400))
def healthz() -> Health:
    """Answer while the process runs, whatever its dependencies do."""
    return Health(status="ok")


@get("/readyz", summary="Readiness: the database answers", responses=problems(400, 429, 503))
async def readyz(pool: DbPool) -> Health:
    """200 when the database answers a query; 503 when it does not, 429 when every connection stayed busy
    with other requests (problem+json with Retry-After either way)."""
    await ping(pool)
    return Health(status="ready")


@get(
    "/metrics",
    media_type="text/plain",
    sync_to_thread=False,
    summary="Prometheus metrics (text exposition format)",
    responses=problems(400),
)
def metrics() -> Response[bytes]:
    """Request counts and latencies per route template (never per id), in Prometheus' text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


health_routes = [healthz, readyz, metrics]
