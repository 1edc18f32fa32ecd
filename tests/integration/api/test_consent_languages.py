"""Spoken consent beyond English through the API, on the real database and the real check: the languages a server
offers (VOICEGATE_CONSENT_LANGUAGES), a phrase in one of them, and its readings heard by Whisper. The wrong reading
is real Spanish speech (a FLEURS clip, CC BY 4.0: tests/clips/languages); the right one is espeak-ng's Spanish voice
reading the phrase (run as a program), the phrase's code set by SQL to one whose reading was heard (a fresh code
is drawn at random)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.consents.phrase import phrase_for
from devkit.db import Conn
from tests.integration.api.conftest import OpenApp, User
from tests.integration.api.test_consent_states import Client, record, state

pytestmark = pytest.mark.timeout(180)
CLIPS = Path(__file__).resolve().parents[2] / "clips" / "languages"


def espeak(text: str, voice: str) -> bytes:
    """``text`` spoken by espeak-ng's ``voice``, as a WAV."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", wav.name, text], check=True, timeout=60)
        return Path(wav.name).read_bytes()


async def test_a_language_the_server_does_not_offer_is_refused_and_its_config_names_those_it_does(
    open_app: OpenApp, make_user: Callable[[], User]
) -> None:
    client: Client = await open_app()
    made = await client.post(
        "/api/v1/consents", json={"subjectName": "Ada Lovelace", "language": "es"}, headers=make_user().headers
    )
    assert made.status_code == 400, made.text
    assert made.json()["code"] == "validation_failed"
    assert "offered in en on this server" in made.json()["detail"]
    assert (await client.get("/config.json")).json()["consentLanguages"] == ["en"]


async def test_a_spanish_phrase_is_made_and_heard_in_spanish(
    open_app: OpenApp, make_user: Callable[[], User], sql: Conn
) -> None:
    client: Client = await open_app(VOICEGATE_CONSENT_LANGUAGES="en,es")
    assert (await client.get("/config.json")).json()["consentLanguages"] == ["en", "es"]
    user = make_user()
    made = await client.post(
        "/api/v1/consents", json={"subjectName": "Ada Lovelace", "language": "es"}, headers=user.headers
    )
    assert made.status_code == 201, made.text
    consent: dict[str, Any] = made.json()
    assert consent["phrase"].startswith("Yo, Ada Lovelace, doy mi consentimiento")
    assert "Mi código es" in consent["phrase"]
    assert (await state(client, user, consent))["language"] == "es"

    wrong = await record(client, user, consent, (CLIPS / "es" / "fleurs-es-000.ogg").read_bytes())
    assert wrong.status_code == 200, wrong.text
    assert (wrong.json()["status"], wrong.json()["reason"]) == ("rejected", "phrase_mismatch")

    phrase = phrase_for("Ada Lovelace", "4719", "es")
    sql.execute(
        "update voice_consents set phrase = %s, code = %s where id = %s",
        (phrase.text, phrase.code, consent["consentId"]),
    )
    right = await record(client, user, consent, espeak(phrase.text, "es"))
    assert right.status_code == 200, right.text
    assert right.json()["status"] == "verified", right.json()
    assert right.json()["wordAccuracy"] >= 0.5
