"""`/metrics`: Prometheus text with request counts and latencies per route template."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from litestar.testing import AsyncTestClient

from tests.integration.api.conftest import User


async def test_requests_are_counted_per_route_template_and_status(
    client: AsyncTestClient,
    make_user: Callable[[], User],  # type: ignore[type-arg]
) -> None:
    alice = make_user()
    for _ in range(3):
        missing = await client.get(f"/v1/reflections/{uuid.uuid4()}", headers=alice.headers)
        assert missing.status_code == 404
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    labels = r'path="/v1/reflections/\{reflection_id\}",status_code="404"'
    counts = re.findall(rf"^voicegate_requests_total\{{[^}}]*{labels}\}} (\S+)$", response.text, re.MULTILINE)
    assert counts, response.text[:2000]
    assert float(counts[0]) >= 3
    assert "voicegate_request_duration_seconds_bucket" in response.text
    assert not re.search(r'path="/v1/reflections/[0-9a-f]{8}-', response.text), "concrete ids must not be labels"
