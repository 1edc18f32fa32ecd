"""Voice ownership through the consent routes on the real database: one account's verified reading registers the
voice; another account reading its own phrase in that same voice (the bundled hibari voice, real speech through
the real checks) is answered `held`, in exactly the shape of a `verified` answer and with nothing of the first
account; the held consent takes no recording and covers no sample. The owner's own second consent in that voice is
verified. `voicegate ops voice-holds` lists the hold with both accounts and releases or refuses it, audited; under
`refuse` the reading is rejected `ownership_refused`, under `off` it is verified."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devkit.db import Conn, seed_consent
from scripts.voice_holds import main as voice_holds
from tests.integration.api.conftest import OpenApp, User
from tests.integration.api.test_consent_states import (
    Client,
    hibari_says,
    new_consent,
    record,
    sample_under,
    state,
    verdicts,
)
from tests.integration.scripts.conftest import Result, Runner, run_script

pytestmark = pytest.mark.timeout(300)
__all__ = ["run_script"]  # a fixture, used by name


async def verified(client: Client, user: User) -> dict[str, Any]:
    """A consent of `user` read in the hibari voice: its recording's answer."""
    consent = await new_consent(client, user)
    answer = await record(client, user, consent, hibari_says(consent["phrase"]))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def ops(run_script: Runner, *args: str) -> Result:
    """`voicegate ops voice-holds` with `args`, on a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(run_script, voice_holds, *args)


def holds(sql: Conn, owner: uuid.UUID) -> list[tuple[Any, ...]]:
    return sql.execute(
        "select id, state, matched_owner_id, score from voicegate.ownership_holds where owner_id = %s", (owner,)
    ).fetchall()


async def test_another_account_reading_a_registered_voice_is_held_and_told_only_that(
    open_app: OpenApp, make_user: Callable[[], User], sql: Conn, run_script: Runner
) -> None:
    client = await open_app()
    alice, bob = make_user(), make_user()
    first = await verified(client, alice)
    assert first["status"] == "verified"
    again = await verified(client, alice)
    assert again["status"] == "verified", "an owner's own voice never matches their own prints"

    taken = await verified(client, bob)
    assert taken["status"] == "held"
    assert taken.keys() == first.keys(), "the answer has the shape of a verified one"
    assert str(alice.id) not in repr(taken)
    consent = {"consentId": taken["consentId"]}
    read = await state(client, bob, consent)
    assert read["status"] == "held"
    assert str(alice.id) not in repr(read)
    assert await sample_under(client, bob, consent) == (422, "consent_not_verified")
    refused = await record(client, bob, consent, hibari_says("Anything at all."))
    assert (refused.status_code, refused.json()["code"]) == (409, "conflict")
    assert verdicts(sql, consent) == ["ownership.held", "consent.held"]
    [(hold_id, hold_state, matched, score)] = holds(sql, bob.id)
    assert (hold_state, matched) == ("held", alice.id)
    assert score >= 0.80

    listed = await ops(run_script, "--json")
    assert listed.code == 1, "a hold waits for a decision"
    [item] = listed.json["items"]
    assert (item["owner_id"], item["matched_owner_id"], item["subject"]) == (str(bob.id), str(alice.id), "consent")
    assert item["score"] == pytest.approx(score)

    dry = await ops(run_script, "--release", str(hold_id))
    assert dry.code == 1
    assert (await state(client, bob, consent))["status"] == "held", "a dry run changes nothing"

    done = await ops(run_script, "--release", str(hold_id), "--note", "one person, two accounts", "--apply")
    assert done.code == 0, done.err
    assert (await state(client, bob, consent))["status"] == "verified"
    assert verdicts(sql, consent)[-1] == "ownership.released"
    assert sql.execute("select count(*) from voicegate.voice_prints where owner_id = %s", (bob.id,)).fetchone() == (1,)
    twice = await ops(run_script, "--refuse", str(hold_id), "--apply")
    assert twice.code == 2, "a decided hold is not decided again"


async def test_an_operator_refusal_rejects_the_held_consent(
    open_app: OpenApp, make_user: Callable[[], User], sql: Conn, run_script: Runner
) -> None:
    client = await open_app()
    alice, bob = make_user(), make_user()
    await verified(client, alice)
    taken = await verified(client, bob)
    [(hold_id, *_)] = holds(sql, bob.id)

    done = await ops(run_script, "--refuse", str(hold_id), "--apply")

    assert done.code == 0, done.err
    read = await state(client, bob, {"consentId": taken["consentId"]})
    assert (read["status"], read["reason"]) == ("rejected", "ownership_refused")
    assert verdicts(sql, taken)[-1] == "ownership.refused"


@pytest.mark.parametrize(("mode", "status"), [("refuse", "rejected"), ("off", "verified")])
async def test_under_refuse_the_reading_is_rejected_and_under_off_it_is_verified(
    open_app: OpenApp, make_user: Callable[[], User], sql: Conn, mode: str, status: str
) -> None:
    alice, bob = make_user(), make_user()
    await verified(await open_app(), alice)

    taken = await verified(await open_app(VOICEGATE_VOICE_OWNERSHIP=mode), bob)

    assert taken["status"] == status
    if mode == "refuse":
        assert taken["reason"] == "ownership_refused"
        assert [row[1] for row in holds(sql, bob.id)] == ["refused"]
    else:
        assert holds(sql, bob.id) == []


@pytest.mark.parametrize(
    ("decision", "stored"),
    [("--release", ("verified", None)), ("--refuse", ("rejected", "ownership_refused"))],
    ids=["release", "refuse"],
)
async def test_a_hold_whose_evidence_retention_purged_is_still_listed_and_decided(
    open_app: OpenApp,
    make_user: Callable[[], User],
    sql: Conn,
    run_script: Runner,
    decision: str,
    stored: tuple[str, str | None],
) -> None:
    client = await open_app()
    alice, bob = make_user(), make_user()
    await verified(client, alice)
    taken = await verified(client, bob)
    consent = {"consentId": taken["consentId"]}
    [(hold_id, *_)] = holds(sql, bob.id)
    # What the maintenance sweep writes once the evidence's retention ends (its run: tests/e2e/test_spoken_consent.py).
    sql.execute(
        "update voice_consents set evidence_purged_at = now(), voiceprint = null, statement_sample_path = null"
        " where id = %s",
        (taken["consentId"],),
    )

    listed = await ops(run_script, "--json")
    [item] = listed.json["items"]
    assert item["evidence_purged_at"] is not None
    done = await ops(run_script, decision, str(hold_id), "--apply", "--json")

    assert done.code == 0, done.err
    assert any("purged by retention" in note for note in done.json["notes"])
    assert (
        sql.execute("select status, refusal from voice_consents where id = %s", (taken["consentId"],)).fetchone()
        == stored
    )
    assert (await state(client, bob, consent))["status"] == "purged", "it covers no sample either way"
    assert verdicts(sql, consent)[-1] == f"ownership.{'released' if decision == '--release' else 'refused'}"
    prints = sql.execute("select count(*) from voicegate.voice_prints where owner_id = %s", (bob.id,)).fetchone()
    assert prints == (0,), "a purged consent has no print to register"


async def test_a_sample_awaiting_its_reading_is_spoken_with_by_nobody_and_says_what_to_do(
    open_app: OpenApp, make_user: Callable[[], User], sql: Conn
) -> None:
    """A synthesis job or a voice from a sample `awaiting_reading` is refused at once, saying how to go on (before, a
    held sample failed its job later, `held_for_review`, with no next step); its phrase comes from its own route."""
    client = await open_app()
    bob = make_user()
    sample = sql.execute(
        "insert into voice_samples (owner_id, consent_id, object_path, sniffed_type, provider, status)"
        " values (%s, %s, %s, 'audio/wav', 'local', 'awaiting_reading') returning id",
        (bob.id, seed_consent(sql, bob.id), f"{bob.id}/samples/x/original"),
    ).fetchone()
    assert sample is not None
    sample_id = str(sample[0])

    job = await client.post("/api/v1/clone", json={"sampleId": sample_id, "text": "Hello."}, headers=bob.headers)
    voice = await client.post("/api/voices", json={"name": "Me", "sampleIds": [sample_id]}, headers=bob.headers)
    for refused in (job, voice):
        assert (refused.status_code, refused.json()["code"]) == (409, "reading_required"), refused.text
        assert f"/api/v1/voice-samples/{sample_id}/reading" in refused.json()["detail"]
    phrase = await client.post(f"/api/v1/voice-samples/{sample_id}/reading", headers=bob.headers)
    assert phrase.status_code == 201, phrase.text
    assert phrase.json()["status"] == "awaiting_recording"
    assert "Ada" in phrase.json()["phrase"], "named as the sample's consent names its subject"
