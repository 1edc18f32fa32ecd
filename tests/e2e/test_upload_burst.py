"""A burst of 200 sample uploads at once from 20 users, against the app with its consumers and the Storage
stand-in (issue 15): nothing is answered 5xx; an upload past a user's VOICEGATE_USER_CONCURRENCY is a 429
with Retry-After that wrote nothing, and so is one that waited past the pool's busy wait for a connection
(`server_busy`: a loaded CI machine got one); every 202 ends `ready`; the sample rows and the stored objects
(rows in `storage.objects` and files on disk) match one for one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.audio_corpus import speech_wav
from devkit.db import Conn
from tests.e2e.conftest import served_app
from tests.integration.api.conftest import User

#: The checks of the burst's hundred-odd 202s take a minute and more of a loaded 2-core machine's CPU (the full
#: suite's other workers beside them: 114 of them were 4 short at 90 s once): the bound only keeps the wait finite.
SETTLE_S = 180
pytestmark = pytest.mark.timeout(SETTLE_S + 60)
USERS = 20
EACH = 10
LIMIT = 4  # each user's 10 at once meet a limit of 4: some are refused, most are served


async def settled(sql: Conn, owners: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    """The owners' sample rows once every check has ended (the app's consumers work them meanwhile)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        rows = sql.execute(
            "select id::text, status, object_path, processed_object_path from public.voice_samples"
            " where owner_id = any(%s)",
            (owners,),
        ).fetchall()
        if all(status in {"ready", "failed"} for _, status, _, _ in rows):
            return rows
        assert time.monotonic() < deadline, Counter(status for _, status, _, _ in rows)
        await asyncio.sleep(0.2)


def stored_files(root: Path) -> set[str]:
    """`bucket/path` of every file the Storage stand-in keeps under `root`."""
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


async def test_a_burst_of_uploads_is_served_or_refused_with_429_never_5xx(
    db_dsn: str, make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    users = [make_user() for _ in range(USERS)]
    data = speech_wav(4.0)
    limits = httpx.Limits(max_connections=USERS * EACH, max_keepalive_connections=USERS * EACH)
    # The backlog admission (tests/integration/api/test_upload_backlog.py) would refuse a share of the burst
    # with 503s once 120 samples wait: this test is about the per-user limit and the rows behind each 202.
    # Every user uploads one synthetic speaker's voice: the ownership registry would hold all but the first
    # account's (docs/ownership.md), which is not what this burst is about.
    # A wait for a connection through a round in which no unit is answered is taken for a hung database, a 503
    # (VOICEGATE_DB_CONNECT_TIMEOUT, 0.75 s by default). Just after start, on a loaded 2-core machine, the burst's
    # first units can take longer than that to be answered: a clean `make test` saw 35 uploads answered 503 at
    # 1.1 s, before any unit had been, the database up throughout. That trade-off of the outage rule is not this
    # test's subject, so its rounds here are 2 s.
    env = {
        "VOICEGATE_USER_CONCURRENCY": str(LIMIT),
        "VOICEGATE_UPLOAD_BACKLOG_SECONDS": "100000",
        "VOICEGATE_VOICE_OWNERSHIP": "off",
        "VOICEGATE_DB_CONNECT_TIMEOUT": "2.0",
    }
    with served_app(db_dsn, tmp_path, consumers=True, **env) as base:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

            async def upload(user: User) -> httpx.Response:
                return await client.post(
                    "/api/v1/voice-samples",
                    data={"consent": "true", "language": "en"},
                    files={"file": ("me.wav", data, "audio/wav")},
                    headers=user.headers,
                )

            responses = await asyncio.gather(*(upload(user) for user in users for _ in range(EACH)))
            rows = await settled(sql, [user.id for user in users])
    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {202, 429}, statuses
    refused = [response for response in responses if response.status_code == 429]
    refusals = Counter((r.json()["code"], r.headers.get("retry-after")) for r in refused)
    assert set(refusals) <= {("concurrency_limited", "1"), ("server_busy", "1")}, refusals
    accepted = {response.json()["sampleId"] for response in responses if response.status_code == 202}
    assert refusals[("concurrency_limited", "1")], "the burst met the per-user limit"
    assert len(accepted) + refusals[("server_busy", "1")] >= USERS * LIMIT, statuses

    owners = [user.id for user in users]
    assert {sample_id for sample_id, *_ in rows} == accepted, "a row for every 202, none for a 429"
    assert Counter(status for _, status, _, _ in rows) == {"ready": len(accepted)}

    originals = {path for _, _, path, _ in rows}
    copies = {copy for *_, copy in rows}
    assert None not in copies
    expected = {f"voice-samples/{path}" for path in originals | copies}
    owned = [str(owner) for owner in owners]
    objects = {
        f"{bucket}/{name}"
        for bucket, name in sql.execute(
            "select bucket_id, name from storage.objects where split_part(name, '/', 1) = any(%s)", (owned,)
        ).fetchall()
    }
    assert objects == expected
    files = {f for f in stored_files(tmp_path / "storage") if f.split("/")[1:2] and f.split("/")[1] in owned}
    assert files == expected
