"""An attempt as its owner reads it, whatever started it: a reflection, `/api/clone/finalize` or a sample upload."""

from __future__ import annotations

import uuid

from backend.auth.verify import UserClaims
from backend.db.pool import Pool
from backend.db.units import user_statement
from backend.records import attempts
from backend.records.attempts import Attempt


async def get_attempt(pool: Pool, claims: UserClaims, attempt_id: uuid.UUID) -> Attempt:
    """One of the caller's attempts, read under their RLS (NotFound for anyone else's)."""
    async with user_statement(pool, claims.raw) as conn:
        return attempts.view(await attempts.get(conn, attempt_id))
