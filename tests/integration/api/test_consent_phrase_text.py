"""voicegate does not speak a consent phrase (docs/consent.md#what-no-mark-survives): WORLD resynthesis removes the
mark, so the path that matters most, voicegate's own voice speaking a phrase it issued, is closed at the text.

- A text that reads as a consent phrase (any name, any code) is refused 422 `consent_phrase` on every route that
  speaks a text the caller chooses (`POST /api/v1/clone`, `POST /api/v1/speech`, `POST /v1/reflections/{id}/speech`),
  for every caller, and nothing is written.
- A text that says one of the caller's own phrases (its name and code, in words the template rule does not see) is
  refused while the phrase is open and for a day after it was made ("recent"), lapsed or not; not after.
- A text that says another account's open phrase as a reading must (half its words) is spoken as any text is (202:
  nothing tells the caller it matched), and that phrase lapses: its consent reads `expired`, a recording of it is
  refused, an audit event says why. Another account's phrase that no longer takes a recording is left as it is.
- So a text is compared with every account's open phrases and the caller's own recent ones, and with nothing else:
  another account's phrase made today that takes no recording is not even looked up (a text that says every code
  would otherwise be aligned with every phrase made in a day).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from psycopg.rows import dict_row

from backend.consents import spoken_text
from backend.consents.phrase import DIGIT_WORDS, phrase_for
from backend.consents.spoken_text import _Q, RECENT_S
from devkit.db import Conn, one
from tests.integration.api.conftest import User
from tests.integration.api.test_consent_states import hibari_says, lapse, new_consent, record, state, verdicts
from tests.integration.api.test_language_refusals import WRITABLE, written
from tests.integration.api.test_reflections_api import TO_HEARD, TO_READY, advance, new_reflection, start_clone
from tests.integration.api.test_usage_api import english_voice

Client = AsyncTestClient  # type: ignore[type-arg]


def refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "consent_phrase"


def said(consent: dict[str, Any], sql: Conn) -> str:
    """The consent's name and code, without the template's wording: what only the phrase itself matches (a third of
    its words and its code: its owner's text is refused)."""
    code = one(sql, "select code from voice_consents where id = %s", (consent["consentId"],))["code"]
    return f"Ada Lovelace here. My code is {', '.join(DIGIT_WORDS[int(digit)] for digit in code)}."


def said_whole(consent: dict[str, Any], sql: Conn) -> str:
    """Half the phrase's words with its code, short of the template's half: as a reading must say it."""
    code = one(sql, "select code from voice_consents where id = %s", (consent["consentId"],))["code"]
    words = ", ".join(DIGIT_WORDS[int(digit)] for digit in code)
    return f"Ada Lovelace here: voicegate making my voice. My code is {words}."


async def job(client: Client, user: User, voice: str, text: str) -> httpx.Response:
    return await client.post("/api/v1/clone", json={"voiceId": voice, "text": text}, headers=user.headers)


async def test_a_text_that_reads_as_a_consent_phrase_is_refused_on_every_route_for_everyone(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    voice = english_voice(sql, alice.id)
    rid = (await new_reflection(client, alice))["id"]
    advance(sql, start_clone(sql, alice, rid), *TO_READY, {"runtime": "syncing"}, {"runtime": "synced"}, *TO_HEARD)
    completed = await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)
    assert completed.status_code == 200, completed.text
    before = written(sql)
    texts = (
        phrase_for("Grace Hopper", "1234").text,
        "I consent to voicegate making my synthetic voice from my recordings, to speak the text I type.",
    )
    for text in texts:
        refused(await job(client, alice, voice, text))
        body = {"voiceId": voice, "text": text, "format": "mp3"}
        refused(await client.post("/api/v1/speech", json=body, headers=alice.headers))
        refused(await client.post(f"/v1/reflections/{rid}/speech", json={"text": text}, headers=alice.headers))

    assert written(sql) == before
    assert set(WRITABLE) >= {"synthesis_jobs", "speech_streams"}


async def test_the_callers_own_phrase_is_refused_while_open_and_for_a_day_after_it_was_made(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    voice = english_voice(sql, alice.id)
    consent = await new_consent(client, alice)
    text = said(consent, sql)

    refused(await job(client, alice, voice, text))
    body = {"voiceId": voice, "text": text, "format": "mp3"}
    refused(await client.post("/api/v1/speech", json=body, headers=alice.headers))
    lapse(sql, consent)
    refused(await job(client, alice, voice, text))  # lapsed, and still recent
    sql.execute(
        "update voice_consents set created_at = now() - interval '25 hours' where id = %s", (consent["consentId"],)
    )
    accepted = await job(client, alice, voice, text)
    assert accepted.status_code == 202, accepted.text


async def test_another_accounts_open_phrase_is_spoken_as_any_text_and_lapses(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice, mallory = make_user(), make_user()
    consent = await new_consent(client, alice)
    kept = await new_consent(client, alice)
    voice = english_voice(sql, mallory.id)
    code = one(sql, "select code from voice_consents where id = %s", (consent["consentId"],))["code"]
    other = f"{(int(code) + 1) % 10000:04d}"
    wrong = f"Ada Lovelace here. My code is {', '.join(DIGIT_WORDS[int(digit)] for digit in other)}."
    sql.execute(
        "update voice_consents set code = %s where id = %s", (f"{(int(code) + 2) % 10000:04d}", kept["consentId"])
    )

    guessed = await job(client, mallory, voice, wrong)
    partly = await job(client, mallory, voice, said(consent, sql))
    assert (await state(client, alice, consent))["status"] == "awaiting_recording"
    matched = await job(client, mallory, voice, said_whole(consent, sql))

    assert (guessed.status_code, partly.status_code, matched.status_code) == (202, 202, 202), matched.text
    assert guessed.json().keys() == matched.json().keys()
    assert (await state(client, alice, consent))["status"] == "expired"
    assert (await state(client, alice, kept))["status"] == "awaiting_recording"
    assert verdicts(sql, consent) == ["consent.phrase_withdrawn"]
    refusal = await record(client, alice, consent, hibari_says("Whatever is said now."))
    assert (refusal.status_code, refusal.json()["code"]) == (422, "consent_expired")


async def test_another_accounts_phrase_that_takes_no_recording_is_left_as_it_is(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice, mallory = make_user(), make_user()
    consent = await new_consent(client, alice)
    voice = english_voice(sql, mallory.id)
    lapse(sql, consent)
    expires = one(sql, "select expires_at from voice_consents where id = %s", (consent["consentId"],))["expires_at"]

    accepted = await job(client, mallory, voice, said_whole(consent, sql))

    assert accepted.status_code == 202, accepted.text
    after = one(sql, "select expires_at from voice_consents where id = %s", (consent["consentId"],))["expires_at"]
    assert after == expires
    assert verdicts(sql, consent) == []
    assert uuid.UUID(accepted.json()["jobId"])


async def test_only_open_phrases_and_the_callers_recent_ones_are_looked_up(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice, bob, mallory = make_user(), make_user(), make_user()
    alices = await new_consent(client, alice)
    bobs = await new_consent(client, bob)
    mallorys = await new_consent(client, mallory)
    lapse(sql, bobs)
    lapse(sql, mallorys)
    ids = [uuid.UUID(consent["consentId"]) for consent in (alices, bobs, mallorys)]
    codes = [one(sql, "select code from voice_consents where id = %s", (id_,))["code"] for id_ in ids]

    rows = (
        sql.cursor(row_factory=dict_row)
        .execute(_Q["phrases_with_codes"], {"codes": codes, "owner_id": mallory.id, "recent_seconds": RECENT_S})
        .fetchall()
    )

    found = {row["id"]: (row["open"], row["recent"]) for row in rows if row["id"] in ids}
    assert found == {ids[0]: (True, True), ids[2]: (False, True)}


async def test_a_text_of_short_stretches_and_codes_withdraws_no_phrase(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    """A few of the phrase's last words and a run of digits, again and again, said a quarter of every phrase whose
    code the digits begin with, and thousands of digits say every code: held to that, one text withdrew half the
    open phrases of a language. Another account's phrase is withdrawn only by a text that says half of it."""
    alice, mallory = make_user(), make_user()
    consent = await new_consent(client, alice)
    voice = english_voice(sql, mallory.id)
    code = one(sql, "select code from voice_consents where id = %s", (consent["consentId"],))["code"]
    stretches = " ".join(f"We type. My code is {code}{n:04d}." for n in range(0, 10000, 97))
    flood = f"{stretches} {' '.join('0123456789' * 100)}"[:5000]

    accepted = await job(client, mallory, voice, flood)

    assert accepted.status_code == 202, accepted.text
    assert (await state(client, alice, consent))["status"] == "awaiting_recording"
    assert verdicts(sql, consent) == []
    accepted = await job(client, mallory, voice, said_whole(consent, sql))
    assert accepted.status_code == 202, accepted.text
    assert (await state(client, alice, consent))["status"] == "expired"
    assert verdicts(sql, consent) == ["consent.phrase_withdrawn"]


async def test_the_phrases_a_text_says_are_compared_with_no_transaction_open(
    client: Client, make_user: Callable[[], User], sql: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison waits for the CPU executor, which a flood of readings can hold for seconds, and the server
    ends a transaction left idle for 5 x VOICEGATE_DB_TIMEOUT: compared inside the synthesis's transaction, a text
    with a phone number in it was answered 503 under another user's flood. While it is compared, no transaction
    of the app's is open."""
    alice, mallory = make_user(), make_user()
    consent = await new_consent(client, alice)
    voice = english_voice(sql, mallory.id)
    code = one(sql, "select code from voice_consents where id = %s", (consent["consentId"],))["code"]
    comparing, release = threading.Event(), threading.Event()

    def held(*args: Any) -> Any:
        comparing.set()
        release.wait(30)
        return spoken_text_said(*args)

    spoken_text_said = spoken_text._said
    monkeypatch.setattr(spoken_text, "_said", held)
    sent = asyncio.create_task(job(client, mallory, voice, f"Call the front desk on {' '.join(code)} after six."))
    try:
        assert await asyncio.to_thread(comparing.wait, 30)
        idle = one(
            sql,
            "select count(*) as n from pg_stat_activity where datname = current_database()"
            " and state like 'idle in transaction%%' and pid <> pg_backend_pid()",
        )["n"]
    finally:
        release.set()
    accepted = await sent

    assert idle == 0
    assert accepted.status_code == 202, accepted.text
    assert (await state(client, alice, consent))["status"] == "awaiting_recording"
