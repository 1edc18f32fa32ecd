"""What the worker steps need (pool, Storage, provider adapters, timings), built once per process (API
or worker) and passed down; and the `Outcome` every step answers with."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import msgspec

from backend.db.pool import Pool
from backend.providers.local.db_store import PostgresProfileStore
from backend.providers.registry import ProviderSet
from backend.providers.selfhosted_store import PostgresReferenceStore
from backend.secret import is_loopback_host
from backend.settings import Settings
from backend.storage.client import ObjectStorage


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """Where one call left the work: finished for now, or to be looked at again at `retry_at`."""

    status: str
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Lifecycle:
    """The pool (service work), Storage, provider adapters and the timing rules of the workers."""

    pool: Pool
    storage: ObjectStorage
    providers: ProviderSet
    #: Whether providers can fetch our signed Storage URLs (false when Storage is on loopback).
    public_storage: bool
    lease_seconds: int = 60
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 300.0

    def retry_delay(self, retry_count: int) -> float:
        """Exponential backoff with full jitter for the `retry_count`-th retry (1-based)."""
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** max(0, retry_count - 1))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


def build_lifecycle(
    settings: Settings, pool: Pool, storage: ObjectStorage, http_client: httpx.AsyncClient
) -> Lifecycle:
    """The lifecycle context of a process: local voices and inline self-hosted references live in the
    database, shared by all workers."""
    if settings.providers is None:
        raise ValueError("the lifecycle needs provider settings (settings_from_env reads them)")
    providers = ProviderSet(
        settings.providers,
        http_client,
        profile_store=PostgresProfileStore(pool),
        reference_store=PostgresReferenceStore(pool),
    )
    return Lifecycle(
        pool=pool,
        storage=storage,
        providers=providers,
        public_storage=not is_loopback_host(urlsplit(settings.storage_public_url).hostname or ""),
        lease_seconds=settings.lease_seconds,
        retry_base_seconds=settings.retry_base_seconds,
    )
