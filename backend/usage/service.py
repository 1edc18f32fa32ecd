"""The caller's own spend (`GET /api/v1/usage`): their characters and audio seconds this window, by provider and
kind, beside their quota, what is left and when it resets.

The ledger and the counter are the service's alone (`backend.usage.ledger`), so this reads them as the service,
for the caller's id only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from backend.auth.verify import UserClaims
from backend.db.units import Database
from backend.domain.limits import SpendQuota
from backend.usage import ledger
from backend.usage.types import ProviderUsage, Usage


@dataclass(frozen=True)
class UsageService:
    """A user's spend, read over the database against the quota the settings give."""

    db: Database
    quota: SpendQuota

    async def own_usage(self, claims: UserClaims) -> Usage:
        """The caller's usage this window (zero before their first call)."""
        owner_id = uuid.UUID(claims.sub)
        async with self.db.service_transaction() as conn:
            allowance = await ledger.read_allowance(conn, owner_id, self.quota)
            spent = await ledger.spent(conn, owner_id, allowance.window_start)
        return Usage(
            characters=allowance.used,
            audio_seconds=_seconds(sum(row.audio_seconds for row in spent)),
            limit=allowance.limit,
            remaining=allowance.remaining,
            window_seconds=allowance.window_seconds,
            window_start=allowance.window_start,
            resets_at=allowance.window_start + timedelta(seconds=allowance.window_seconds),
            by_provider=[
                ProviderUsage(
                    provider=row.provider,
                    kind=row.kind,
                    characters=row.characters,
                    audio_seconds=_seconds(row.audio_seconds),
                    calls=row.calls,
                )
                for row in spent
            ],
        )


def _seconds(value: float) -> float:
    """Seconds of audio to the hundredth: the sum of float seconds carries binary noise (17.18133333333333)."""
    return round(value, 2)
