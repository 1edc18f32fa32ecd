"""An operator script's run (`scripts/`), built under one `AsyncExitStack`: its database connection first, then
what the script asks for as it needs it (the provider adapters, Storage), each entered on the run's stack the
first time it is asked for and closed with the run, in the reverse order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import httpx
import msgspec

from backend.cpu import CpuExecutor
from backend.db.connection import Connection
from backend.db.pool import create_pool
from backend.settings import Settings
from backend.tls import verifying_context

if TYPE_CHECKING:
    from backend.db.units import Database
    from backend.providers.registry import ProviderSet
    from backend.storage.client import ObjectStorage

T = TypeVar("T")


class OperatorRun:
    """One run of an operator script: its settings, its database (`dsn`) and its autocommit connection `conn`."""

    def __init__(self, settings: Settings, dsn: str, conn: Connection, stack: AsyncExitStack) -> None:
        self.settings = settings
        self.dsn = dsn
        self.conn = conn
        self._stack = stack
        self._providers: ProviderSet | None = None

    async def providers(self) -> ProviderSet:
        """The provider adapters, as the workers build them, over a small service pool of the run's own, a plain
        HTTP client and one CPU thread (the scripts look voices up and never render)."""
        # The provider set imports every adapter (the local engine's models too): only the scripts that use it
        # pay for that.
        from backend.compose.parts import build_providers, open_database  # noqa: PLC0415

        if self._providers is None:
            limits = msgspec.structs.replace(self.settings.pool_limits, min_size=1, max_size=2)
            db = await open_database(self._stack, create_pool(self.dsn, limits), wait=True)
            http = await self._stack.enter_async_context(
                httpx.AsyncClient(timeout=httpx.Timeout(30.0), trust_env=False, verify=verifying_context())
            )
            cpu = await self._stack.enter_async_context(CpuExecutor(1))
            self._providers = build_providers(self.settings, db, http, cpu=cpu)
        return self._providers

    async def service(self) -> tuple[Database, CpuExecutor]:
        """A small service pool of the run's own and one CPU thread: for a script that prints voices again
        (`voicegate ops reprint-voiceprints`)."""
        from backend.compose.parts import open_database  # noqa: PLC0415 - as `providers`

        limits = msgspec.structs.replace(self.settings.pool_limits, min_size=1, max_size=2)
        db = await open_database(self._stack, create_pool(self.dsn, limits), wait=True)
        return db, await self._stack.enter_async_context(CpuExecutor(1))

    async def hold(self, resource: AbstractAsyncContextManager[T]) -> T:
        """`resource` entered, open until the run ends (the Storage stand-in a script runs in its own process)."""
        return await self._stack.enter_async_context(resource)

    async def supabase_storage(self, url: str, service_key: str) -> ObjectStorage:
        """Supabase Storage at `url` with the service key."""
        from backend.storage.client import SupabaseObjectStorage  # noqa: PLC0415 - only scripts that remove objects

        return await self._stack.enter_async_context(SupabaseObjectStorage(url, service_key))


@asynccontextmanager
async def operator_run(
    settings: Settings, dsn: str, connect: Callable[[], Awaitable[Connection]]
) -> AsyncIterator[OperatorRun]:
    """A run over the connection `connect()` makes (the script says how, and in what words it fails)."""
    async with AsyncExitStack() as stack:
        conn = await connect()
        stack.push_async_callback(conn.close)
        yield OperatorRun(settings, dsn, conn, stack)
