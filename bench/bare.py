"""The bare equivalents `bench/api.py` measures voicegate's routes against: a Litestar app with a plain
psycopg pool (no checks, no middleware) on the same Postgres, served by the same uvicorn.

    BARE_DSN=postgresql://... BARE_USER=<uuid> uvicorn bench.bare:app

- `GET /hello`: Litestar's hello world (beside `GET /healthz`);
- `GET /select1`: a pooled connection and `select 1` (beside `GET /readyz`);
- `GET /rls/{id}`: the caller's RLS transaction, two `set_config`s then a `count(*)` of the reflection
  (beside `GET /v1/reflections/{id}/voice`);
- `POST /speech/elevenlabs` and `POST /speech/vllm-omni` `{text}`: the provider's stream asked for as voicegate's
  adapters ask (one kept-alive httpx client over voicegate's aiohttp transport, as theirs), its bytes passed on as
  they come, with no database and no mark
  (`bench/streaming.py`'s floor for any Python server: BARE_ELEVENLABS_URL, BARE_ELEVENLABS_KEY,
  BARE_SELFHOSTED_URL, BARE_SELFHOSTED_MODEL);
- `POST /speech/{provider}/as-caller/{id}` `{text}`: the same, once the database has said, as the caller and in one
  round trip (a pipeline: `begin`, the two `set_config`s, a read of the reflection, `commit`), that the reflection
  is theirs: the least a server whose boundary is RLS asks before it speaks (404 when the read finds nothing).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Stream
from psycopg_pool import AsyncConnectionPool

from backend.providers.transport import AiohttpTransport
from backend.tls import verifying_context

pool = AsyncConnectionPool(os.environ.get("BARE_DSN", ""), min_size=2, max_size=20, open=False)
claims = json.dumps({"sub": os.environ.get("BARE_USER", ""), "role": "authenticated"})
#: The caller's role and claims, as PostgREST sets them; then the read RLS answers as that caller.
_AS_CALLER = "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)"
_COUNT_REFLECTION = "select count(*) from public.reflections where id = %s"


@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"status": "ok"}


@get("/select1")
async def select1() -> dict[str, str]:
    async with pool.connection() as conn:
        await conn.execute("select 1")
    return {"status": "ready"}


@get("/rls/{reflection_id:uuid}")
async def rls(reflection_id: uuid.UUID) -> dict[str, int]:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(_AS_CALLER, (claims,))
        cur = await conn.execute(_COUNT_REFLECTION, (reflection_id,))
        row = await cur.fetchone()
    return {"count": row[0] if row else 0}


#: The provider calls `speech` makes: the URL, query, headers and body of each, as voicegate's adapters send them.
_UPSTREAMS: dict[str, tuple[str, dict[str, str], dict[str, str], dict[str, str]]] = {
    "elevenlabs": (
        f"{os.environ.get('BARE_ELEVENLABS_URL', '')}/v1/text-to-speech/v1/stream",
        {"output_format": "pcm_24000"},
        {"xi-api-key": os.environ.get("BARE_ELEVENLABS_KEY", "")},
        {"model_id": "eleven_multilingual_v2"},
    ),
    "vllm-omni": (
        f"{os.environ.get('BARE_SELFHOSTED_URL', '')}/v1/audio/speech",
        {},
        {},
        {
            "voice": "v1",
            "model": os.environ.get("BARE_SELFHOSTED_MODEL", ""),
            "response_format": "pcm",
            "stream_format": "audio",
        },
    ),
}
#: The field each provider's body names its text with.
_TEXT_FIELD = {"elevenlabs": "text", "vllm-omni": "input"}
# httpx logs each request at INFO: a line per stream would drown the bench's output.
logging.getLogger("httpx").setLevel(logging.WARNING)
upstream = httpx.AsyncClient(timeout=60, transport=AiohttpTransport(verify=verifying_context(), connections=100))


@post("/speech/{provider:str}", status_code=200)
async def speech(provider: str, data: dict[str, str]) -> Stream:
    return await _relay(provider, data["text"])


@post("/speech/{provider:str}/as-caller/{reflection_id:uuid}", status_code=200)
async def speech_as_caller(provider: str, reflection_id: uuid.UUID, data: dict[str, str]) -> Stream:
    async with pool.connection() as conn:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(_AS_CALLER, (claims,))
            cur = await conn.execute(_COUNT_REFLECTION, (reflection_id,))
        row = await cur.fetchone()
    if not row or row[0] != 1:
        raise NotFoundException
    return await _relay(provider, data["text"])


async def _relay(provider: str, text: str) -> Stream:
    url, params, headers, body = _UPSTREAMS[provider]
    sent = {**body, _TEXT_FIELD[provider]: text}
    request = upstream.build_request("POST", url, params=params, headers=headers, json=sent)
    response = await upstream.send(request, stream=True)
    # The first bytes before the answer, as voicegate waits for them (a refusal is then a status).
    chunks = response.aiter_raw()
    first = await anext(chunks, b"")

    async def relayed() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await response.aclose()

    return Stream(relayed(), media_type="audio/pcm")


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    await pool.open(wait=True)
    yield
    await pool.close()
    await upstream.aclose()


app = Litestar([hello, select1, rls, speech, speech_as_caller], lifespan=[lifespan])
