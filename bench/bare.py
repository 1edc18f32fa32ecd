"""The bare equivalents `bench/api.py` measures voicegate's routes against: a Litestar app with a plain
psycopg pool (no checks, no middleware) on the same Postgres, served by the same uvicorn.

    BARE_DSN=postgresql://... BARE_USER=<uuid> uvicorn bench.bare:app

- `GET /hello`: Litestar's hello world (beside `GET /healthz`);
- `GET /select1`: a pooled connection and `select 1` (beside `GET /readyz`);
- `GET /rls/{id}`: the caller's RLS transaction, two `set_config`s then a `count(*)` of the reflection
  (beside `GET /v1/reflections/{id}/voice`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, get
from psycopg_pool import AsyncConnectionPool

pool = AsyncConnectionPool(os.environ.get("BARE_DSN", ""), min_size=2, max_size=20, open=False)
claims = json.dumps({"sub": os.environ.get("BARE_USER", ""), "role": "authenticated"})


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
        await conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)", (claims,)
        )
        cur = await conn.execute("select count(*) from public.reflections where id = %s", (reflection_id,))
        row = await cur.fetchone()
    return {"count": row[0] if row else 0}


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    await pool.open(wait=True)
    yield
    await pool.close()


app = Litestar([hello, select1, rls], lifespan=[lifespan])
