"""The one place that builds what the use cases are handed: the provider set and the lifecycle context,
for the API, the worker and the operator scripts alike. Each builder says what it owns (and closes) and
what stays its caller's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import msgspec

from backend.context import Lifecycle
from backend.cpu import CpuExecutor
from backend.db.pool import Pool, create_pool, create_worker_pool
from backend.providers.local.db_store import PostgresProfileStore
from backend.providers.registry import ProviderSet
from backend.providers.selfhosted_store import PostgresReferenceStore
from backend.secret import is_loopback_host
from backend.settings import Settings
from backend.standard_webhooks.sender import Target, WebhookSender
from backend.storage.client import ObjectStorage
from backend.tls import verifying_context

if TYPE_CHECKING:
    from backend.provenance import ProvenanceSigner


def build_providers(settings: Settings, pool: Pool, http_client: httpx.AsyncClient, *, cpu: CpuExecutor) -> ProviderSet:
    """The provider adapters over `http_client` and `cpu` (both the caller's): local voices and inline
    self-hosted references live in the database behind `pool`, shared by every process."""
    return ProviderSet(
        settings.provider_settings,
        http_client,
        cpu=cpu,
        profile_store=PostgresProfileStore(pool),
        reference_store=PostgresReferenceStore(pool),
    )


def build_lifecycle(
    settings: Settings,
    pool: Pool,
    storage: ObjectStorage,
    http_client: httpx.AsyncClient,
    signer: ProvenanceSigner,
    *,
    cpu: CpuExecutor,
) -> Lifecycle:
    """The lifecycle context of a process, owning `signer` (built at start-up with
    `ProvenanceSigner.from_settings`) and its webhook sender, using `cpu` (closed by its owner)."""
    project = None
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        project = Target(settings.webhook_url, settings.webhook_secret, trusted=True)
    return Lifecycle(
        pool=pool,
        storage=storage,
        providers=build_providers(settings, pool, http_client, cpu=cpu),
        public_storage=not is_loopback_host(urlsplit(settings.storage_public_url).hostname or ""),
        signer=signer,
        cpu=cpu,
        webhooks=WebhookSender(project, allow_private=settings.embedded),
        lease_seconds=settings.lease_seconds,
        retry_base_seconds=settings.retry_base_seconds,
        likeness_probe=settings.likeness_probe == "on",
    )


@asynccontextmanager
async def worker_lifecycle(
    settings: Settings,
    dsn: str,
    storage: ObjectStorage,
    http_client: httpx.AsyncClient,
    signer: ProvenanceSigner,
    *,
    cpu: CpuExecutor,
) -> AsyncIterator[Lifecycle]:
    """The queue consumers' lifecycle, on a worker pool of its own (opened without waiting: a worker starts
    while the database is down). On leaving it closes its webhook sender and its pool; `signer`, `storage`,
    `http_client` and `cpu` stay the caller's (`voicegate up` shares them with the API)."""
    pool = create_worker_pool(dsn, settings.pool_limits, patience=settings.queue_visibility_seconds)
    await pool.open(wait=False)
    try:
        ctx = build_lifecycle(settings, pool, storage, http_client, signer, cpu=cpu)
        try:
            yield ctx
        finally:
            await ctx.webhooks.aclose()
    finally:
        await pool.close()


@asynccontextmanager
async def operator_providers(settings: Settings, dsn: str) -> AsyncIterator[ProviderSet]:
    """The provider adapters of an operator script, as the workers build them, over a small service pool of
    their own, a plain HTTP client and one CPU thread (the scripts look voices up and never render); all
    closed on leaving."""
    pool = create_pool(dsn, msgspec.structs.replace(settings.pool_limits, min_size=1, max_size=2))
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30.0), trust_env=False, verify=verifying_context()) as http,
        CpuExecutor(1) as cpu,
    ):
        await pool.open(wait=True)
        try:
            yield build_providers(settings, pool, http, cpu=cpu)
        finally:
            await pool.close()
