"""The API process is built under one exit stack (`backend.compose.api.api_process`): a start-up that fails
half-way closes what it had already opened, the pools and the CPU executor's threads included."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from backend.app import create_app
from backend.db.pool import Pool
from backend.settings import settings_from_env
from backend.standard_webhooks.sender import WebhookSender
from standins.embedded import with_auth_keys
from standins.in_app import EMBEDDED
from tests.integration.api.conftest import JWT_SECRET


def _cpu_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name.startswith("voicegate-cpu")}


def _connections(dsn: str) -> int:
    """The clients' sessions open on the test's own database, but this one."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


async def test_a_start_up_that_fails_half_way_closes_what_it_had_opened(
    db_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Pool] = []
    real_open = Pool.open

    async def recording_open(self: Pool, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        await real_open(self, *args, **kwargs)

    def refuse(*_: object, **__: object) -> None:
        raise RuntimeError("the webhook sender cannot start")

    monkeypatch.setattr(Pool, "open", recording_open)
    # Made with the worker context: after the pools, the Storage client and the CPU executor.
    monkeypatch.setattr(WebhookSender, "__init__", refuse)
    threads_before = _cpu_threads()
    settings = with_auth_keys(
        settings_from_env({"VOICEGATE_DATA_DIR": str(tmp_path)}), {"SUPABASE_JWT_SECRET": JWT_SECRET}
    )

    with pytest.raises(ExceptionGroup) as failed:  # the test client's task group reports the lifespan's failure
        async with AsyncTestClient(app=create_app(settings, db_dsn, embedded=EMBEDDED)):
            pass
    assert failed.group_contains(RuntimeError, match="^the webhook sender cannot start$")

    assert len(opened) == 2, "the API's pool and the Storage stand-in's were opened before the failure"
    assert [pool.closed for pool in opened] == [True, True]
    assert _cpu_threads() == threads_before
    # And the database holds no session of theirs (a closed connection's backend ends just after it).
    deadline = time.monotonic() + 10
    while _connections(db_dsn):
        assert time.monotonic() < deadline, "the pools' sessions outlived them"
        await asyncio.sleep(0.05)
