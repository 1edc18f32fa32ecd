"""A clip's audio labelled as the request's `Accept` prefers: its own type by default, `application/octet-stream`
(the same bytes) for a client that asks for that, as the OpenAPI document declares for a generated client."""

from __future__ import annotations

from collections.abc import Callable

from litestar.testing import AsyncTestClient

from devkit.db import Conn
from tests.integration.api.conftest import User
from tests.integration.api.test_studio_api import seed_render
from tests.support import seed_voice

Client = AsyncTestClient  # type: ignore[type-arg]


async def test_a_clip_comes_as_bytes_to_a_client_that_asks_for_them(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    job, wav = await seed_render(client, sql, user.id, seed_voice(sql, user.id))

    for accept, label in (("*/*", "audio/wav"), ("application/octet-stream", "application/octet-stream")):
        response = await client.get(f"/api/v1/clone/{job}/audio", headers={**user.headers, "Accept": accept})
        assert response.status_code == 200, response.text
        assert (response.headers["content-type"], response.content) == (label, wav)
        assert response.headers["content-disposition"] == f'attachment; filename="clip-{job}.wav"'
