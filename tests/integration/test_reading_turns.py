"""Consent readings are long calls on the CPU executor (`backend.cpu.long_calls`): heard in a tier of their own,
never before another user's short work (bench/reading_flood.py measures what another user waits). On a real
database, with the real checks of readings in the bundled voice; the phrase check is watched (the tier and nice
value of the thread it runs on), never replaced."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy.typing as npt
import pytest

from backend.consents import service
from backend.consents.phrase import Phrase, PhraseCheck
from backend.consents.types import ConsentRequest
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from devkit.db import create_user
from tests.integration.api.test_consent_states import hibari_says
from tests.integration.conftest import open_lifecycle
from tests.integration.test_ownership_reading import ORIGIN, claims_of, consents_of
from tests.integration.test_voice_ownership import Db
from tests.unit.test_cpu import nice_here, tier_here

pytestmark = pytest.mark.timeout(300)
BOUND_S = 60.0
NAMES = ("Alice Held", "Bob Later")


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as opened:
        yield opened


async def test_a_reading_is_heard_as_a_long_call_and_no_short_call_waits_for_it(
    ctx: WorkerContext, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = create_user(db), create_user(db)
    loop = asyncio.get_running_loop()
    holding, gate = asyncio.Event(), threading.Event()
    tiers: dict[str, tuple[str, int]] = {}
    real = service.check_phrase

    def watched(samples: npt.ArrayLike, rate: int, phrase: Phrase) -> PhraseCheck:
        name = next(name for name in NAMES if name in phrase.text)
        tiers[name] = tier_here()
        if name == "Alice Held":
            loop.call_soon_threadsafe(holding.set)
            assert gate.wait(BOUND_S), "the test never let the first reading go on"
        return real(samples, rate, phrase)

    monkeypatch.setattr(service, "check_phrase", watched)
    async with CpuExecutor(1) as one:  # a thread a tier: what waits in a tier is queued behind its only thread
        consents = dataclasses.replace(consents_of(ctx), cpu=one)

        async def read(owner: uuid.UUID, name: str) -> str:
            claims = claims_of(owner)
            made = await consents.create_consent(claims, ConsentRequest(subject_name=name), ORIGIN)
            verdict = await consents.record_recording(
                claims=claims, consent_id=made.consent_id, data=hibari_says(made.phrase)
            )
            return verdict.status

        held = asyncio.create_task(read(alice, "Alice Held"))
        await asyncio.wait_for(holding.wait(), BOUND_S)
        later = asyncio.create_task(read(bob, "Bob Later"))
        # While Alice's reading holds the tier of long calls, Bob's short work (a render's phrase) runs at once.
        assert await asyncio.wait_for(one.run(bob, tier_here), BOUND_S) == ("first", nice_here())
        gate.set()
        assert await asyncio.wait_for(asyncio.gather(held, later), BOUND_S)

    assert tiers == {"Alice Held": ("long", nice_here()), "Bob Later": ("long", nice_here())}
