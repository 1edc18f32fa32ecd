"""An attempt as its owner reads it, whatever started it: a reflection, `/api/clone/finalize` or a sample upload."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from backend.auth.verify import UserClaims
from backend.db.units import Database
from backend.domain.attempts import Attempt, view
from backend.records import attempts


@dataclass(frozen=True)
class AttemptsService:
    """Clone attempts as their owners read them, over the database."""

    db: Database

    async def get_attempt(self, claims: UserClaims, attempt_id: uuid.UUID) -> Attempt:
        """One of the caller's attempts, read under their RLS (NotFound for anyone else's)."""
        async with self.db.user_statement(claims.raw) as conn:
            return view(await attempts.get(conn, attempt_id))
