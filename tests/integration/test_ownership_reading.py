"""A voice that matches another account's asks its uploader to read (issue 78; docs/ownership.md, "Asked to read"),
under the default VOICEGATE_VOICE_OWNERSHIP=ask, on a real database with pgvector and the real checks.

A sample under a ticked box whose voice matches a voice another account holds waits `awaiting_reading` (saying
nothing of the other account) until its uploader reads a consent phrase (`POST /api/v1/voice-samples/{id}/reading`,
then the consent's recording), matched one to one against the sample: read in the sample's own voice, the sample is
ready and joins the registry (the stranger whose voice resembles someone's); read in another voice, the sample fails
`ownership_refused` (someone uploading another person's recordings); read in the sample's voice while that voice is
near-identical to the other account's, it is held for review (the same voice twice: no reading settles that). Real
speech: a man of LibriSpeech (2414, CC BY 4.0) for the other person's recordings, and the bundled hibari voice, which
reads any phrase, for the uploader's own."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from backend.auth.verify import UserClaims
from backend.consents.service import ConsentsService
from backend.context import WorkerContext
from backend.cpu import CpuExecutor
from backend.errors import Conflict, NotFound
from backend.policy.consent import Origin
from backend.providers.local.hibari_voice import HibariVoice
from backend.records import ownership
from backend.samples.step import process_sample
from backend.settings import settings_from_env
from devkit.db import create_user, one
from tests.integration.api.test_consent_states import hibari_says
from tests.integration.conftest import open_lifecycle
from tests.integration.test_voice_ownership import HIS, HIS_OTHER, RATE, Db, actions, checked, holds_of, registered

pytestmark = pytest.mark.timeout(300)
ORIGIN = Origin(user_agent="test", client_ip="127.0.0.1")


@functools.cache
def hibari(text: str) -> npt.NDArray[np.float32]:
    """`text` in the bundled voice at the clips' rate: a sample of the uploader's own voice."""
    voice = HibariVoice.shared()
    spoken = voice.speak(text).astype(np.float64)
    positions = np.arange(0, len(spoken), voice.sample_rate / RATE)
    return np.interp(positions, np.arange(len(spoken)), spoken).astype(np.float32)


MINE = "This is my own voice, recorded at home for my assistant, one clear sentence after another."
MINE_AGAIN = "Here I am once more, reading a second page aloud, so that the clone hears how I really sound."


@pytest.fixture
async def ctx(cpu: CpuExecutor, db_dsn: str, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    async with open_lifecycle(cpu, db_dsn, tmp_path) as opened:
        assert opened.voice_ownership == "ask", "the default"
        yield opened


def consents_of(ctx: WorkerContext) -> ConsentsService:
    return ConsentsService(
        ctx.db,
        ctx.storage,
        ctx.cpu,
        retention_days=30,
        limits=settings_from_env({}).user_limits,
        phrase_seconds=600,
        voice_ownership=ctx.voice_ownership,
        ownership_thresholds=ctx.ownership_thresholds,
    )


def claims_of(user: uuid.UUID) -> UserClaims:
    raw = {"sub": str(user), "role": "authenticated", "aud": "authenticated"}
    return UserClaims(sub=str(user), email=None, role="authenticated", aal=None, session_id=None, raw=raw)


async def read_aloud(ctx: WorkerContext, db: Db, owner: uuid.UUID, sample_id: uuid.UUID) -> dict[str, Any]:
    """The owner asks for the sample's phrase and reads it in their own voice (hibari's): the sample's row after."""
    consents = consents_of(ctx)
    phrase = await consents.reading_for_sample(claims_of(owner), sample_id, ORIGIN)
    assert phrase.status == "awaiting_recording"
    verdict = await consents.record_recording(
        claims=claims_of(owner), consent_id=phrase.consent_id, data=hibari_says(phrase.phrase)
    )
    assert verdict.status in {"verified", "held"}, verdict
    row: dict[str, Any] = one(db, "select * from voice_samples where id = %s", (sample_id,))
    return row


async def test_a_stranger_whose_voice_matches_a_registered_one_reads_in_it_and_goes_on(
    ctx: WorkerContext, db: Db
) -> None:
    # Every voice matches another account's here, and only the very same voice is near-identical: the stranger case.
    loose = dataclasses.replace(ctx, ownership_thresholds=ownership.Thresholds(match=-1.0, same_voice=0.99))
    alice, bob = create_user(db), create_user(db)
    assert (await checked(loose, db, alice, HIS))["status"] == "ready"

    asked = await checked(loose, db, bob, hibari(MINE))

    assert (asked["status"], asked["failure_reason"]) == ("awaiting_reading", None)
    [question] = holds_of(db, asked["id"])
    assert (question["state"], question["decided_at"]) == ("asked", None)
    assert registered(db, bob) == 0
    answered = await read_aloud(loose, db, bob, asked["id"])
    assert answered["status"] == "ready"
    [question] = holds_of(db, asked["id"])
    assert (question["state"], question["decided_by"]) == ("answered", "reading")
    assert registered(db, bob) == 2, "the reading's print and the sample's join the registry"
    assert actions(db, asked["id"]) == ["ownership.asked", "ownership.answered"]
    # Checked again (for another provider), an answered sample is not asked a second time.
    db.execute("update voice_samples set status = 'pending' where id = %s", (asked["id"],))
    assert (await checked_again(loose, db, asked["id"]))["status"] == "ready"


async def test_a_sample_asked_under_ge2e_is_held_for_review_not_judged_by_its_reading(
    ctx: WorkerContext, db: Db
) -> None:
    # Asked before the encoder changed: its print is still GE2E's 1,024 bytes when its reading comes.
    loose = dataclasses.replace(ctx, ownership_thresholds=ownership.Thresholds(match=-1.0, same_voice=0.99))
    alice, bob = create_user(db), create_user(db)
    await checked(loose, db, alice, HIS)
    asked = await checked(loose, db, bob, hibari(MINE))
    assert asked["status"] == "awaiting_reading"
    db.execute("update voice_samples set voiceprint = %s where id = %s", (bytes(1024), asked["id"]))

    held = await read_aloud(loose, db, bob, asked["id"])

    assert (held["status"], held["failure_reason"]) == ("held", None)
    [question] = holds_of(db, asked["id"])
    assert (question["state"], question["decided_at"]) == ("held", None)
    assert registered(db, bob) == 1, "the reading's print alone: the sample's joins once an operator releases it"


async def checked_again(ctx: WorkerContext, db: Db, sample_id: uuid.UUID) -> dict[str, Any]:
    await process_sample(ctx, sample_id)
    row: dict[str, Any] = one(db, "select * from voice_samples where id = %s", (sample_id,))
    return row


async def test_someone_uploading_another_persons_recording_cannot_read_in_that_voice(
    ctx: WorkerContext, db: Db
) -> None:
    alice, mallory = create_user(db), create_user(db)
    await checked(ctx, db, alice, HIS)

    copied = await checked(ctx, db, mallory, HIS_OTHER)

    assert copied["status"] == "awaiting_reading", "his two recordings match: asked first"
    refused = await read_aloud(ctx, db, mallory, copied["id"])
    assert (refused["status"], refused["failure_reason"]) == ("failed", ownership.SAMPLE_REFUSAL)
    [question] = holds_of(db, copied["id"])
    assert (question["state"], question["decided_by"], question["matched_owner_id"]) == ("refused", "reading", alice)
    assert registered(db, mallory) == 1, "the reading is Mallory's own voice; the sample never joins"
    with pytest.raises(Conflict):
        await consents_of(ctx).reading_for_sample(claims_of(mallory), copied["id"], ORIGIN)


async def test_the_same_voice_under_two_accounts_is_held_for_review_after_its_reading(
    ctx: WorkerContext, db: Db
) -> None:
    first, second = create_user(db), create_user(db)
    assert (await checked(ctx, db, first, hibari(MINE)))["status"] == "ready"

    again = await checked(ctx, db, second, hibari(MINE_AGAIN))

    assert again["status"] == "awaiting_reading"
    held = await read_aloud(ctx, db, second, again["id"])
    assert held["status"] == "held"
    [question] = holds_of(db, again["id"])
    assert (question["state"], question["decided_at"]) == ("held", None)
    assert question["score"] >= ctx.ownership_thresholds.same_voice
    # An operator decides it, as any hold.
    async with ctx.db.service_transaction() as conn:
        decided = await ownership.decide(conn, question["id"], "released", actor="ops:test", note="one person")
    assert decided.state == "released"
    assert one(db, "select status from voice_samples where id = %s", (again["id"],))["status"] == "ready"


async def test_only_the_owner_of_a_sample_waiting_for_its_reading_is_given_a_phrase(ctx: WorkerContext, db: Db) -> None:
    alice, bob = create_user(db), create_user(db)
    ready = await checked(ctx, db, alice, HIS)
    copied = await checked(ctx, db, bob, HIS_OTHER)
    consents = consents_of(ctx)

    with pytest.raises(NotFound):
        await consents.reading_for_sample(claims_of(alice), copied["id"], ORIGIN)
    with pytest.raises(Conflict):
        await consents.reading_for_sample(claims_of(alice), ready["id"], ORIGIN)
    first = await consents.reading_for_sample(claims_of(bob), copied["id"], ORIGIN)
    newest = await consents.reading_for_sample(claims_of(bob), copied["id"], ORIGIN)
    assert first.phrase != newest.phrase
    [question] = holds_of(db, copied["id"])
    assert question["reading_consent_id"] == newest.consent_id, "the newest phrase given is the one that answers"
