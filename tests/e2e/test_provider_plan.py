"""A provider plan's concurrency, met by the worker as it is deployed: the ElevenLabs fake holds the account to 3
requests at once and answers a fourth 429 `too_many_concurrent_requests`, as ElevenLabs does. With
VOICEGATE_PROVIDER_CONCURRENCY at the plan's 3, a dozen clones uploaded in a row (the clone queue working 16 at
once, the preview queue 8) all end ready and previewed, and not one request met the plan's limit: the requests
beyond it waited in the process for a slot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from devkit.db import Conn
from fakes import ElevenLabsFake, serve
from tests.e2e.conftest import elevenlabs_env
from tests.e2e.test_faults_and_fencing import seed, until_all_end
from tests.integration.api.conftest import User

pytestmark = pytest.mark.timeout(120)

PLAN = 3


@pytest.fixture
def fake() -> Iterator[tuple[ElevenLabsFake, str]]:
    provider = ElevenLabsFake(max_voices=1000)
    provider.plan_concurrency = PLAN
    # Long enough that the attempts overlap at the provider, as a real one's seconds make them.
    provider.faults.latency_s = 0.3
    with serve(provider) as url:
        yield provider, url


async def test_a_plan_of_three_requests_is_never_exceeded_and_every_clone_ends_ready(
    worker_client: Callable[..., Any], fake: tuple[ElevenLabsFake, str], make_user: Callable[[], User], sql: Conn
) -> None:
    provider, url = fake
    app: AsyncTestClient = await worker_client(  # type: ignore[type-arg]
        **elevenlabs_env(provider, url), VOICEGATE_PROVIDER_CONCURRENCY=str(PLAN)
    )
    await seed(app, make_user(), 12)
    rows = await until_all_end(sql)
    assert [r["status"] for r in rows] == ["ready"] * 12, [(r["status"], r["last_error_code"]) for r in rows]
    assert all(r["preview_status"] == "ready" for r in rows)
    assert len(provider.requests_to("POST", "/v1/voices/add")) == 12
    assert [f"{r.method} {r.path}" for r in provider.over_plan] == []
    # The plan was used whole: the clones did overlap at the provider.
    assert provider.most_in_flight == PLAN
