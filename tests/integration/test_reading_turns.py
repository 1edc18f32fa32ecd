"""Consent readings are long calls on the CPU executor (`backend.cpu.LongCalls`): never in the tier of other users'
short calls, and a user's flood of them on the niced tier (bench/reading_flood.py measures what another user
waits). On a real database, with the real checks of readings in the bundled voice; the phrase check is watched (the
tier and nice value of the thread it runs on), never replaced."""

from __future__ import annotations

import asyncio
import os
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
from backend.cpu import BACKGROUND_NICE, CpuExecutor
from devkit.db import create_user
from tests.integration.api.test_consent_states import hibari_says
from tests.integration.conftest import open_lifecycle
from tests.integration.test_ownership_reading import ORIGIN, claims_of, consents_of
from tests.integration.test_voice_ownership import Db

pytestmark = pytest.mark.timeout(300)
BOUND_S = 60.0
NAMES = ("Alice first", "Alice second", "Bob alone", "Alice straight after")


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as opened:
        yield opened


def nice_here() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def tier_here() -> tuple[str, int]:
    """The executor's tier the calling thread serves, by its name, and its nice value."""
    name = threading.current_thread().name
    return ("long" if "-long-" in name else "yielding" if "-yielding-" in name else "first"), nice_here()


async def test_a_users_readings_beyond_one_at_a_time_are_heard_niced_and_nobody_elses(
    ctx: WorkerContext, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    consents = consents_of(ctx)
    alice, bob = create_user(db), create_user(db)
    loop = asyncio.get_running_loop()
    holding, gate = asyncio.Event(), threading.Event()
    tiers: dict[str, tuple[str, int]] = {}
    real = service.check_phrase

    def watched(samples: npt.ArrayLike, rate: int, phrase: Phrase) -> PhraseCheck:
        name = next(name for name in NAMES if name in phrase.text)
        tiers[name] = tier_here()
        if name.endswith("first"):
            loop.call_soon_threadsafe(holding.set)
            assert gate.wait(BOUND_S), "the test never let the first reading go on"
        return real(samples, rate, phrase)

    monkeypatch.setattr(service, "check_phrase", watched)

    async def read(owner: uuid.UUID, name: str) -> str:
        claims = claims_of(owner)
        made = await consents.create_consent(claims, ConsentRequest(subject_name=name), ORIGIN)
        verdict = await consents.record_recording(
            claims=claims, consent_id=made.consent_id, data=hibari_says(made.phrase)
        )
        return verdict.status

    ours = nice_here()
    first = asyncio.create_task(read(alice, "Alice first"))
    await asyncio.wait_for(holding.wait(), BOUND_S)
    assert consents.readings.held(alice) == 1
    # Alice's second reading while her first is heard, then Bob's while it still is: neither waits for it.
    assert await asyncio.wait_for(read(alice, "Alice second"), BOUND_S)
    assert await asyncio.wait_for(read(bob, "Bob alone"), BOUND_S)
    gate.set()
    assert await asyncio.wait_for(first, BOUND_S)
    # Straight after: the first rests as long as it took (its wait for the gate, two readings long).
    assert await asyncio.wait_for(read(alice, "Alice straight after"), BOUND_S)

    long, niced = ("long", ours), ("yielding", min(19, ours + BACKGROUND_NICE))
    assert tiers == {"Alice first": long, "Alice second": niced, "Bob alone": long, "Alice straight after": niced}
    assert consents.readings.held(alice) == consents.readings.held(bob) == 0
