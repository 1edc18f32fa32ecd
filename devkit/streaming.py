"""A timed streaming request to a speech route, for the streaming-speech tests and the benchmarks: the answer
read chunk by chunk, with when its first and last bytes arrived."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Heard:
    """A streamed answer: status, headers, the body's bytes, and when its first and last bytes arrived."""

    status: int
    headers: httpx.Headers
    body: bytes
    first_byte_s: float
    total_s: float
    chunks: int

    def json(self) -> Any:
        return httpx.Response(self.status, content=self.body).json()


async def stream(client: httpx.AsyncClient, path: str, token: str, body: dict[str, Any]) -> Heard:
    """POST `body` to a speech route and read the answer chunk by chunk, timing it."""
    started = time.monotonic()
    first: float | None = None
    data = b""
    chunks = 0
    async with client.stream("POST", path, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
        async for chunk in response.aiter_raw():
            first = first if first is not None else time.monotonic() - started
            data += chunk
            chunks += 1
    total = time.monotonic() - started
    return Heard(response.status_code, response.headers, data, first if first is not None else total, total, chunks)
