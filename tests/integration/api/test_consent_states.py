"""A consent's state machine (backend/policy/consent.py), each transition taken and each refusal met through the
API on the real database: the state is what `GET /api/v1/consents/{id}` reads, and what the recording and sample
routes go by. A phrase's time passing is the row's `expires_at` moved into the past by SQL, not waited for; the
readings are the bundled hibari voice saying the phrase, or a wrong sentence (real speech: the check is the real
one)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from backend.consents.service import _Q as CONSENT_QUERIES
from backend.providers.local.hibari_voice import HibariVoice
from devkit.audio_corpus import recording, wav_bytes
from devkit.db import Conn, one, seed_consent
from tests.integration.api.conftest import OpenApp, User

pytestmark = pytest.mark.timeout(180)
Client = AsyncTestClient  # type: ignore[type-arg]
WRONG_SENTENCE = (
    "Please call Stella and ask her to bring these things with her from the store: six spoons of fresh snow peas."
)


@functools.cache
def hibari_says(text: str) -> bytes:
    """`text` in the bundled voice, as a WAV with room tone around it."""
    voice = HibariVoice.shared()
    return wav_bytes(recording(voice.speak(text).astype(np.float32), voice.sample_rate), voice.sample_rate)


async def new_consent(client: Client, user: User) -> dict[str, Any]:
    made = await client.post("/api/v1/consents", json={"subjectName": "Ada Lovelace"}, headers=user.headers)
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def record(client: Client, user: User, consent: dict[str, Any], audio: bytes) -> Any:
    return await client.post(
        f"/api/v1/consents/{consent['consentId']}/recording",
        files={"file": ("phrase.wav", audio, "audio/wav")},
        headers=user.headers,
    )


async def state(client: Client, user: User, consent: dict[str, Any]) -> dict[str, Any]:
    read = await client.get(f"/api/v1/consents/{consent['consentId']}", headers=user.headers)
    assert read.status_code == 200, read.text
    body: dict[str, Any] = read.json()
    return body


def lapse(sql: Conn, consent: dict[str, Any]) -> None:
    """The phrase's time passes."""
    sql.execute(
        "update voice_consents set expires_at = now() - interval '1 second' where id = %s", (consent["consentId"],)
    )


def verdicts(sql: Conn, consent: dict[str, Any]) -> list[str]:
    rows = sql.execute(
        "select action from voicegate.audit_events where subject_type = 'voice_consent' and subject_id = %s"
        " order by id",
        (consent["consentId"],),
    ).fetchall()
    return [action for (action,) in rows]


async def sample_under(client: Client, user: User, consent: dict[str, Any]) -> tuple[int, str]:
    sent = await client.post(
        "/api/v1/voice-samples",
        data={"consentId": consent["consentId"]},
        files={"file": ("take.wav", hibari_says("My own voice, once more."), "audio/wav")},
        headers=user.headers,
    )
    return sent.status_code, sent.json().get("code", "")


@pytest.fixture
async def client(open_app: OpenApp) -> Client:
    opened: Client = await open_app()
    return opened


async def test_a_new_spoken_consent_awaits_its_recording_and_a_checkbox_one_is_accepted_and_takes_none(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    consent = await new_consent(client, user)
    assert consent["status"] == "awaiting_recording"
    assert (await state(client, user, consent))["status"] == "awaiting_recording"
    assert await sample_under(client, user, consent) == (422, "consent_not_verified")

    checkbox = {"consentId": str(seed_consent(sql, user.id))}
    assert (await state(client, user, checkbox))["status"] == "accepted"
    refused = await record(client, user, checkbox, hibari_says(consent["phrase"]))
    assert (refused.status_code, refused.json()["code"]) == (409, "conflict")
    assert await sample_under(client, user, checkbox) == (422, "consent_not_verified")


async def test_awaiting_a_recording_a_wrong_reading_rejects_it_and_another_then_a_right_one_verifies_it(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    consent = await new_consent(client, user)
    wrong = await record(client, user, consent, hibari_says(WRONG_SENTENCE))
    assert (wrong.status_code, wrong.json()["status"], wrong.json()["reason"]) == (200, "rejected", "phrase_mismatch")
    assert (await state(client, user, consent))["status"] == "rejected"
    assert await sample_under(client, user, consent) == (422, "consent_not_verified")

    again = await record(client, user, consent, hibari_says(WRONG_SENTENCE))
    assert (again.status_code, again.json()["status"]) == (200, "rejected"), "rejected -> rejected"
    right = await record(client, user, consent, hibari_says(consent["phrase"]))
    assert (right.status_code, right.json()["status"]) == (200, "verified"), "rejected -> verified"
    assert (await state(client, user, consent))["status"] == "verified"
    assert verdicts(sql, consent) == ["consent.rejected", "consent.rejected", "consent.verified"]


async def test_awaiting_a_recording_a_right_reading_verifies_it_and_it_then_takes_no_other(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    consent = await new_consent(client, user)
    right = await record(client, user, consent, hibari_says(consent["phrase"]))
    assert (right.status_code, right.json()["status"]) == (200, "verified")
    lapse(sql, consent)  # a verified consent does not lapse with its phrase's time
    assert (await state(client, user, consent))["status"] == "verified"
    again = await record(client, user, consent, hibari_says(consent["phrase"]))
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert verdicts(sql, consent) == ["consent.verified"]


@pytest.mark.parametrize("rejected_first", [False, True], ids=["awaiting", "rejected"])
async def test_past_its_time_a_consent_reads_expired_and_a_recording_is_refused_before_its_audio_is_read(
    client: Client, make_user: Callable[[], User], sql: Conn, rejected_first: bool
) -> None:
    user = make_user()
    consent = await new_consent(client, user)
    if rejected_first:
        assert (await record(client, user, consent, hibari_says(WRONG_SENTENCE))).json()["status"] == "rejected"
    lapse(sql, consent)

    read = await state(client, user, consent)
    assert (read["status"], read["reason"]) == ("expired", "expired")
    # Bytes that are no audio: had they been read, the answer would be 415 `unsupported_audio`.
    late = await record(client, user, consent, b"not audio at all")
    assert (late.status_code, late.json()["code"]) == (422, "consent_expired")
    right_but_late = await record(client, user, consent, hibari_says(consent["phrase"]))
    assert (right_but_late.status_code, right_but_late.json()["code"]) == (422, "consent_expired")
    assert verdicts(sql, consent) == (["consent.rejected"] if rejected_first else []), "nothing was judged"
    assert await sample_under(client, user, consent) == (422, "consent_expired")


async def test_an_expired_consent_frees_its_place_among_the_open_ones(
    open_app: OpenApp, make_user: Callable[[], User], sql: Conn
) -> None:
    client = await open_app(VOICEGATE_USER_OPEN_CONSENTS="1")
    user = make_user()
    consent = await new_consent(client, user)
    assert (await record(client, user, consent, hibari_says(WRONG_SENTENCE))).json()["status"] == "rejected"
    full = await client.post("/api/v1/consents", json={"subjectName": "Ada"}, headers=user.headers)
    assert (full.status_code, full.json()["code"]) == (429, "open_consents_limited"), "a rejected one is open"
    lapse(sql, consent)
    assert (await new_consent(client, user))["status"] == "awaiting_recording"


async def test_a_verdict_is_not_written_over_a_consent_whose_time_ran_out_while_it_was_judged(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    """The writes' own guard, as the database holds it: what a recording judged across the phrase's end finds."""
    user = make_user()
    consent = await new_consent(client, user)
    lapse(sql, consent)
    params = {"id": consent["consentId"], "refusal": "phrase_mismatch", "word_accuracy": 0.1, "speech_seconds": 5.0}
    assert sql.execute(CONSENT_QUERIES["reject"], params).fetchall() == []
    verified = {
        "id": consent["consentId"],
        "status": "verified",
        "path": f"{user.id}/consents/{consent['consentId']}/recording",
        "sha256": "0" * 64,
        "voiceprint": bytes(1024),
        "word_accuracy": 0.9,
        "speech_seconds": 8.0,
        "retention_days": 30.0,
    }
    assert sql.execute(CONSENT_QUERIES["verify"], verified).fetchall() == []
    assert one(sql, "select status, refusal from voice_consents where id = %s", (consent["consentId"],)) == {
        "status": "awaiting_recording",
        "refusal": None,
    }


async def test_a_verified_consent_whose_evidence_was_purged_reads_purged_and_covers_nothing_more(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    user = make_user()
    consent = await new_consent(client, user)
    assert (await record(client, user, consent, hibari_says(consent["phrase"]))).json()["status"] == "verified"
    # What the maintenance sweep writes (its run: tests/e2e/test_spoken_consent.py).
    sql.execute(
        "update voice_consents set evidence_purged_at = now(), voiceprint = null, statement_sample_path = null"
        " where id = %s",
        (consent["consentId"],),
    )
    read = await state(client, user, consent)
    assert read["status"] == "purged"
    assert read["evidencePurgedAt"]
    again = await record(client, user, consent, hibari_says(consent["phrase"]))
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert await sample_under(client, user, consent) == (422, "consent_expired")


@pytest.mark.parametrize("seconds", [None, "120"], ids=["default", "set"])
async def test_a_phrase_lasts_voicegate_consent_phrase_seconds(
    open_app: OpenApp, make_user: Callable[[], User], sql: Conn, seconds: str | None
) -> None:
    client = await open_app(**({"VOICEGATE_CONSENT_PHRASE_SECONDS": seconds} if seconds else {}))
    user = make_user()
    consent = await new_consent(client, user)
    lifetime = one(
        sql,
        "select extract(epoch from expires_at - created_at)::float8 as seconds from voice_consents where id = %s",
        (consent["consentId"],),
    )["seconds"]
    assert lifetime == pytest.approx(float(seconds or 600), abs=1.0)
