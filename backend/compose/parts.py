"""What every process is built from: its pools (each behind the `Database` its use cases are given), the provider
set and the worker context the use cases are handed, for the API, the worker and the operator scripts alike. A
builder that opens something takes the process's `AsyncExitStack` and enters what it opens there as it opens it; one
that only assembles says what stays its caller's."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.db.pool import Pool
from backend.db.units import Database
from backend.providers.local.db_store import PostgresProfileStore
from backend.providers.registry import ProviderSet
from backend.providers.selfhosted_store import PostgresReferenceStore
from backend.records.ownership import Thresholds
from backend.secret import is_loopback_host
from backend.settings import Settings
from backend.standard_webhooks.sender import Destination, WebhookSender
from backend.storage.client import ObjectStorage, SupabaseObjectStorage
from backend.usage.charge import Ledger
from backend.voiceprint import OWNERSHIP_THRESHOLD, SAME_VOICE_THRESHOLD

if TYPE_CHECKING:
    from backend.provenance import ProvenanceSigner


def storage_client(settings: Settings) -> SupabaseObjectStorage:
    """The process's client of Supabase Storage at SUPABASE_URL, with the service key (embedded mode's API reaches
    its own stand-in in-process instead: `backend.compose.api`)."""
    return SupabaseObjectStorage(
        settings.storage_public_url, service_key(settings), version_ttl=settings.storage_version_seconds
    )


def service_key(settings: Settings) -> str:
    """The service key Storage is called with; ValueError without one."""
    key = settings.auth.service_key if settings.auth else None
    if key is None:
        raise ValueError("the storage client needs SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY")
    return key.reveal()


def build_providers(
    settings: Settings, db: Database, http_client: httpx.AsyncClient, *, cpu: CpuExecutor
) -> ProviderSet:
    """The provider adapters over `http_client` and `cpu` (both the caller's): local voices and inline
    self-hosted references live in `db`, shared by every process; each provider's requests held to
    VOICEGATE_PROVIDER_CONCURRENCY at once."""
    return ProviderSet(
        settings.provider_settings,
        http_client,
        cpu=cpu,
        profile_store=PostgresProfileStore(db),
        reference_store=PostgresReferenceStore(db),
        in_flight=settings.provider_concurrency,
    )


def build_worker_context(
    settings: Settings,
    db: Database,
    storage: ObjectStorage,
    http_client: httpx.AsyncClient,
    signer: ProvenanceSigner,
    *,
    cpu: CpuExecutor,
) -> WorkerContext:
    """The worker context of a process, owning `signer` (built at start-up with
    `ProvenanceSigner.from_settings`) and its webhook sender, using `cpu` (closed by its owner)."""
    project = None
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        project = Destination(settings.webhook_url, settings.webhook_secret, trusted=True)
    return WorkerContext(
        db=db,
        storage=storage,
        providers=build_providers(settings, db, http_client, cpu=cpu),
        public_storage=not is_loopback_host(urlsplit(settings.storage_public_url).hostname or ""),
        signer=signer,
        cpu=cpu,
        webhooks=WebhookSender(project, allow_private=settings.embedded),
        ledger=Ledger(db, settings.spend_quota),
        lease_seconds=settings.lease_seconds,
        retry_base_seconds=settings.retry_base_seconds,
        likeness_probe=settings.likeness_probe == "on",
        voice_ownership=settings.voice_ownership,
        # Unset, the threshold calibrated on real speech: resolved here once for the worker and the API alike.
        ownership_thresholds=Thresholds(
            OWNERSHIP_THRESHOLD if settings.ownership_threshold is None else settings.ownership_threshold,
            SAME_VOICE_THRESHOLD,
        ),
    )


async def open_database(stack: AsyncExitStack, pool: Pool, *, wait: bool) -> Database:
    """The database behind `pool`, opened, and closed with `stack`. With `wait` it waits for its first
    connections (PoolTimeout when the database does not answer in time); without, the process starts while
    the database is down."""
    # Entered before opening: an open that times out leaves the pool open, connecting in the background.
    stack.push_async_callback(pool.close)
    await pool.open(wait=wait)
    return Database(pool)


def enter_worker_context(
    stack: AsyncExitStack,
    settings: Settings,
    db: Database,
    storage: ObjectStorage,
    http_client: httpx.AsyncClient,
    *,
    signer: ProvenanceSigner,
    cpu: CpuExecutor,
) -> WorkerContext:
    """`build_worker_context`, its webhook sender closed with `stack`; `signer` stays the caller's (a process has one,
    which `voicegate up` shares between the API's worker context and the worker's)."""
    ctx = build_worker_context(settings, db, storage, http_client, signer, cpu=cpu)
    stack.push_async_callback(ctx.webhooks.aclose)
    stack.push_async_callback(ctx.ledger.aclose)
    return ctx
