"""The entry check in front of the Storage stand-in (`/storage/v1` in embedded mode): what it refuses there is
answered in Storage's own error envelope, as Supabase clients parse it, never as a server error."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.integration.storage.test_limits import TOO_LARGE


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        # A route that reads JSON, sent more than the JSON limit (1 MiB).
        ("/storage/v1/object/list/voice-samples", b"{" + b" " * (1100 * 1024) + b"}", {}),
        # An upload route announcing more than Storage takes: refused by its length, before a byte is read.
        ("/storage/v1/object/voice-samples/a/b.wav", b"RIFF", {"content-length": "999999999999"}),
    ],
    ids=["json-over-the-limit", "upload-announcing-too-much"],
)
async def test_a_body_the_entry_check_refuses_is_storage_s_entity_too_large(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture, path: str, body: bytes, headers: dict[str, str]
) -> None:
    caplog.set_level(logging.ERROR)
    answer = await client.post(path, content=body, headers={"content-type": "application/json", **headers})
    assert answer.status_code == 400, answer.text  # Storage's rule for the object routes: the status is in the body
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json() == TOO_LARGE
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
