"""What the worker steps need (pool, Storage, provider adapters, the C2PA signer, the webhook sender,
timings), built once per process (API or worker) and passed down; and the `Outcome` every step answers
with."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import msgspec

from backend.cpu import CpuExecutor
from backend.db.pool import Pool
from backend.providers.local.db_store import PostgresProfileStore
from backend.providers.registry import ProviderSet
from backend.providers.selfhosted_store import PostgresReferenceStore
from backend.secret import is_loopback_host
from backend.settings import Settings
from backend.storage.client import ObjectStorage
from backend.standard_webhooks.sender import Target, WebhookSender

if TYPE_CHECKING:
    from backend.provenance import ProvenanceSigner


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """Where one call left the work: finished for now, or to be looked at again at `retry_at`."""

    status: str
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Lifecycle:
    """The pool (service work), Storage, provider adapters, the signer of synthesized audio, the CPU executor,
    the webhook sender and the timing rules of the workers."""

    pool: Pool
    storage: ObjectStorage
    providers: ProviderSet
    #: Whether providers can fetch our signed Storage URLs (false when Storage is on loopback).
    public_storage: bool
    #: Signs every file voicegate synthesizes (one per process: it holds the native c2pa signer).
    signer: ProvenanceSigner
    #: Runs CPU-bound work fairly between users: the process's one executor, owned (and closed) by what
    #: runs the process, which may share it between lifecycles (`voicegate up`: the API's and the worker's).
    cpu: CpuExecutor
    webhooks: WebhookSender
    lease_seconds: int = 60
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0

    def retry_delay(self, retry_count: int) -> float:
        """Exponential backoff with full jitter for the `retry_count`-th retry (1-based)."""
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** max(0, retry_count - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    async def aclose(self) -> None:
        """Release what the lifecycle holds of its own: the webhook sender's client and the signer."""
        await self.webhooks.aclose()
        self.signer.close()


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
    `ProvenanceSigner.from_settings`) and using `cpu` (closed by its owner): local voices and inline
    self-hosted references live in the database, shared by all workers."""
    providers = ProviderSet(
        settings.provider_settings,
        http_client,
        cpu=cpu,
        profile_store=PostgresProfileStore(pool),
        reference_store=PostgresReferenceStore(pool),
    )
    project = None
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        project = Target(settings.webhook_url, settings.webhook_secret, trusted=True)
    return Lifecycle(
        pool=pool,
        storage=storage,
        providers=providers,
        public_storage=not is_loopback_host(urlsplit(settings.storage_public_url).hostname or ""),
        signer=signer,
        cpu=cpu,
        webhooks=WebhookSender(project, allow_private=settings.embedded),
        lease_seconds=settings.lease_seconds,
        retry_base_seconds=settings.retry_base_seconds,
    )
