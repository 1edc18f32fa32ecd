"""A language the `local` engine cannot speak (English only), or a text it cannot read (letters that are not
Latin), is a 422 `language_not_supported` naming the languages it speaks, on every route that reaches it:
clone (reflection upload, sample upload, finalize, a job's clone from a sample), speech (both routes), a
synthesis job and attaching a voice. Nothing is written: no sample, attempt, job or stream row, no stored
object, no queued message. The voice's language decides (a voice stored in Chinese, as one enrolled before
the engine became English-only, is refused for an English text). A cloud provider keeps its own languages
(`tests/e2e/test_language_refusals.py`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from litestar.testing import AsyncTestClient

from devkit.db import Conn, one, seed_consent
from tests.integration.api.conftest import User
from tests.integration.api.test_clone_api import WAV as FINALIZE_WAV
from tests.integration.api.test_clone_api import put_sample, upload_url
from tests.integration.api.test_reflection_voice_api import WAV, clone, nothing_written, reflection
from tests.integration.api.test_reflections_api import TO_READY, advance, new_reflection, start_clone

Client = AsyncTestClient  # type: ignore[type-arg]
CHINESE = "你好世界。"
ENGLISH = "Hello there, this is plain English."
#: What every refusal of the local engine says after its reason.
SPEAKS = "The local provider speaks: en."
WRITABLE = (
    "voices",
    "voice_samples",
    "voice_clone_attempts",
    "synthesis_jobs",
    "speech_streams",
    "storage.objects",
    "pgmq.q_voice_clone_process",
    "pgmq.q_voice_sample_process",
    "pgmq.q_voice_synthesis",
)


def written(sql: Conn) -> dict[str, int]:
    """How many rows each table a refused request could have written holds."""
    return {table: one(sql, f"select count(*) as n from {table}")["n"] for table in WRITABLE}


def refused(response: httpx.Response, detail: str) -> None:
    """A 422 problem that names the local engine and the languages it speaks."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["provider"], problem["languages"]) == ("language_not_supported", "local", ["en"])
    assert problem["detail"] == f"{detail} {SPEAKS}"


def text_refusal(words: str) -> str:
    return f"The text has letters that are not Latin ({words}), which the local provider cannot read."


def local_voice(sql: Conn, owner: uuid.UUID, language: str | None, provider_voice_id: str = "local-legacy") -> str:
    """A ready voice of `owner` that speaks with the local engine, in `language` (a voice enrolled in Chinese
    before the engine spoke English only, say)."""
    return str(
        one(
            sql,
            "insert into voices (owner_id, name, status, tts_provider, provider_voice_id, consent_id, language)"
            " values (%s, 'Ada ' || %s, 'ready', 'local', %s, %s, %s) returning id",
            (owner, provider_voice_id, provider_voice_id, seed_consent(sql, owner), language),
        )["id"]
    )


def stored_local_voice(sql: Conn, voice_id: str, language: str) -> None:
    """The engine's own record of a voice (`voicegate.local_voices`), in `language`."""
    profile = {"median_f0_hz": 120.0, "f0_sd_semitones": 2.0, "syllable_rate_hz": 4.0, "envelope_db": [0.0] * 24}
    sql.execute(
        "insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)"
        " values (%s, 'Ada', %s, %s, %s)",
        (voice_id, language, f"key-{voice_id}", json.dumps(profile)),
    )


async def test_a_clone_in_chinese_for_the_local_engine_is_refused_on_every_upload_route_and_writes_nothing(
    client: Client, make_user: Callable[[], User], sql: Conn, tmp_path: Path
) -> None:
    alice = make_user()
    rid = await reflection(client, alice)
    refused(await clone(client, alice, rid, language="zh"), "Language 'zh' is not supported.")
    assert nothing_written(sql, tmp_path)

    sample = await client.post(
        "/api/v1/voice-samples",
        data={"consent": "true", "language": "zh-Hans-CN", "provider": "local"},
        files={"file": ("me.wav", WAV, "audio/wav")},
        headers=alice.headers,
    )
    refused(sample, "Language 'zh-Hans-CN' is not supported.")
    assert nothing_written(sql, tmp_path)
    assert written(sql)["pgmq.q_voice_sample_process"] == 0

    # Upload-then-finalize: the draft's language (named with its upload URL), or the one finalize names.
    for at_upload, at_finalize in (("zh", None), ("en", "zh-TW")):
        ticket = await upload_url(client, alice, language=at_upload)
        await put_sample(client, ticket, FINALIZE_WAV)
        body = {"voice_id": ticket["voice_id"], **({"language": at_finalize} if at_finalize else {})}
        refused(
            await client.post("/api/clone/finalize", json=body, headers=alice.headers),
            f"Language {at_finalize or at_upload!r} is not supported.",
        )
        draft = one(sql, "select status, language from voices where id = %s", (ticket["voice_id"],))
        assert draft == {"status": "draft", "language": at_upload}
    assert {t: n for t, n in written(sql).items() if n} == {"voices": 2, "storage.objects": 2}  # the drafts only

    # English in any region is cloned.
    cloned = await clone(client, alice, rid, language="en-GB")
    assert cloned.status_code == 202, cloned.text


async def test_a_job_or_a_stream_in_a_voice_stored_in_chinese_is_refused_before_anything_is_written(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    chinese = local_voice(sql, alice.id, "zh")
    rid = (await new_reflection(client, alice))["id"]
    attempt = advance(
        sql,
        start_clone(sql, alice, rid),
        *TO_READY,
        {"runtime": "syncing"},
        {"runtime": "synced"},
        {"preview": "generating"},
        {"preview": "ready"},
    )
    completed = await client.post(f"/v1/reflections/{rid}/voice/preview/complete", headers=alice.headers)
    assert completed.status_code == 200, completed.text
    sql.execute("update voices set language = 'zh-CN' where id = %s", (attempt["voice_id"],))
    before = written(sql)

    voice_refusal = "This voice's language is 'zh'."
    # The voice's language decides: an English text in a Chinese voice is refused too.
    for text in (ENGLISH, CHINESE):
        job = await client.post("/api/v1/clone", json={"voiceId": chinese, "text": text}, headers=alice.headers)
        refused(job, voice_refusal)
        speech = await client.post("/api/v1/speech", json={"voiceId": chinese, "text": text}, headers=alice.headers)
        refused(speech, voice_refusal)
    spoken = await client.post(f"/v1/reflections/{rid}/speech", json={"text": ENGLISH}, headers=alice.headers)
    refused(spoken, "This voice's language is 'zh-CN'.")
    assert written(sql) == before


async def test_an_english_voice_is_refused_a_text_it_cannot_read_and_speaks_accented_names(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    english = local_voice(sql, alice.id, "en-US")
    unnamed = local_voice(sql, alice.id, None, "local-unnamed")  # no language named: English, as always
    for voice_id in (english, unnamed):
        for text, words in ((CHINESE, f"“{CHINESE}”"), ("Hello 世界, how are you?", "“世界,”"), ("Привет", "“Привет”")):
            job = await client.post("/api/v1/clone", json={"voiceId": voice_id, "text": text}, headers=alice.headers)
            refused(job, text_refusal(words))
            body = {"voiceId": voice_id, "text": text, "format": "mp3"}
            refused(await client.post("/api/v1/speech", json=body, headers=alice.headers), text_refusal(words))
    assert (written(sql)["synthesis_jobs"], written(sql)["speech_streams"]) == (0, 0)

    accented = "Zoë and Chloë met at the café in Łódź at 10:30."
    job = await client.post("/api/v1/clone", json={"voiceId": english, "text": accented}, headers=alice.headers)
    assert job.status_code == 202, job.text
    assert (written(sql)["synthesis_jobs"], written(sql)["pgmq.q_voice_synthesis"]) == (1, 1)


async def test_a_job_cloning_a_chinese_sample_with_the_local_engine_is_refused(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    # A sample uploaded before uploads were checked for their language.
    sample = one(
        sql,
        "insert into voice_samples (owner_id, consent_id, object_path, status, provider, language)"
        " values (%s, %s, %s, 'ready', 'local', 'zh') returning id",
        (alice.id, seed_consent(sql, alice.id), f"{alice.id}/samples/{uuid.uuid4()}/original"),
    )["id"]
    before = written(sql)
    job = await client.post("/api/v1/clone", json={"sampleId": str(sample), "text": ENGLISH}, headers=alice.headers)
    refused(job, "Language 'zh' is not supported.")
    assert written(sql) == before


async def test_attaching_a_local_voice_in_another_language_is_refused(
    client: Client, make_user: Callable[[], User], sql: Conn
) -> None:
    alice = make_user()
    rid = (await new_reflection(client, alice))["id"]
    # Alice's voices, held by the engine: one in Chinese, one in English.
    for provider_voice_id, language in (("local-zh", "zh"), ("local-en", "en")):
        local_voice(sql, alice.id, None, provider_voice_id)
        stored_local_voice(sql, provider_voice_id, language)
    before = written(sql)
    path = f"/v1/reflections/{rid}/voice"
    stored = await client.patch(path, json={"provider": "local", "voice_id": "local-zh"}, headers=alice.headers)
    refused(stored, "This voice's language is 'zh'.")
    named = {"provider": "local", "voice_id": "local-en", "language": "ja"}
    refused(await client.patch(path, json=named, headers=alice.headers), "This voice's language is 'ja'.")
    assert written(sql) == before
    # Nobody else learns the language of Alice's voice.
    mallory = make_user()
    theirs = (await new_reflection(client, mallory))["id"]
    taken = await client.patch(
        f"/v1/reflections/{theirs}/voice", json={"provider": "local", "voice_id": "local-zh"}, headers=mallory.headers
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "provider_voice_taken")
    english = await client.patch(path, json={"provider": "local", "voice_id": "local-en"}, headers=alice.headers)
    assert english.status_code == 202, english.text
