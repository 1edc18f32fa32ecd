"""Liveness and readiness probes, and the Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from backend.http.deps import Db, StorageReadiness
from backend.http.documents.openapi import problems
from backend.http.pipeline.db_admission import DATABASE_FREE
from backend.storage.client import ObjectStorage, StorageProbe

#: How long /readyz waits for Storage's answer (a probe must answer promptly, even when Storage hangs).
STORAGE_WITHIN = 1.0
#: How long /readyz keeps Storage's answer: a balancer polling it often costs Storage (and, in embedded
#: mode, the database) one request a second. The database is asked on every call: its `select 1` is
#: what readiness is about, and a 503 must follow the database's going away at once.
STORAGE_FRESH_FOR = 1.0


def storage_readiness(storage: ObjectStorage, clock: Callable[[], float] = time.monotonic) -> StorageProbe:
    """What /readyz asks whether `storage` answers (the app's `storage_probe`)."""
    return StorageProbe(storage, within=STORAGE_WITHIN, fresh_for=STORAGE_FRESH_FOR, clock=clock)


class Health(msgspec.Struct):
    """Probe answer."""

    status: str


@get(
    "/healthz",
    sync_to_thread=False,
    opt={DATABASE_FREE: True},
    summary="Liveness: the process is up",
    responses=problems(400),
)
def healthz() -> Health:
    """Answer while the process runs, whatever its dependencies do."""
    return Health(status="ok")


class Readiness(msgspec.Struct):
    """What the readiness probe found: `ready`, or `degraded` while Storage does not answer."""

    status: str
    #: `up` (were it not, the answer would be a 503).
    database: str
    #: `up`, or `unavailable` when it did not answer within a second.
    storage: str


@get("/readyz", summary="Readiness: the database answers (and whether Storage does)", responses=problems(400, 429, 503))
async def readyz(db: Db, storage_probe: StorageReadiness) -> Readiness:
    """200 when the database answers a query, `ready` when Storage answers too, `degraded` when it does not:
    without Storage only uploads, sample checks, renders and results wait (the consumers hold that work
    until it is back), and every instance shares it, so taking this one out of service would help nobody.
    503 when the database does not answer, 429 when every connection stayed busy with other requests
    (problem+json with Retry-After either way). Storage's answer is at most a second old."""
    await db.ping()
    up = await storage_probe.answers()
    return Readiness(status="ready" if up else "degraded", database="up", storage="up" if up else "unavailable")


@get(
    "/metrics",
    media_type="text/plain",
    sync_to_thread=False,
    opt={DATABASE_FREE: True},
    summary="Prometheus metrics (text exposition format)",
    responses=problems(400),
)
def metrics() -> Response[bytes]:
    """Request counts and latencies per route template (never per id), in Prometheus' text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


health_routes = [healthz, readyz, metrics]
