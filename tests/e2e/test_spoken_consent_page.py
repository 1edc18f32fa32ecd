"""The page's spoken consent (issue 46) in a real browser (Debian's Chromium under Playwright, cut off from
everything but the app) against a real `voicegate up` with `VOICEGATE_CONSENT=spoken` and the `local` provider.

Chromium's fake microphone plays a WAV file; it opens the file again each time capture starts (measured: a
page that stopped its tracks and asked for the microphone again heard the file as rewritten meanwhile, in the
same browser), so the test writes what the visitor says just before each recording: the bundled hibari voice
reading a wrong sentence, then the phrase the page shows (its one-time code is fresh), then a sample.

The server offers the phrase in English and Spanish (`VOICEGATE_CONSENT_LANGUAGES=en,es`). One visitor's path: no
consent box is offered; name → "Get my phrase" → the phrase shown; a file chosen meanwhile
waits for the consent; the wrong sentence is rejected in words and the visitor reads again; the phrase is
verified; the waiting file (another speaker, a LibriSpeech clip) then fails `speaker_mismatch`, said in words with
its score; a sample recorded in hibari's voice is accepted; Speak makes the voice and plays it, and the page says
how much it sounds like the sample. Another visitor picks Spanish: the phrase is shown in Spanish, and a reading of
another Spanish sentence (real speech, a FLEURS clip: tests/clips/languages) is refused in Spanish words. Each state
passes axe-core at 375 and 1280 px (`test-artifacts/page-states/`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from playwright.async_api import Page, Playwright, expect

from backend.providers.local.hibari_voice import HibariVoice
from backend.voiceprint import THRESHOLD
from devkit.audio_corpus import noise, recording, wav_bytes
from devkit.up import Running, running_up
from tests.conftest import server_dir
from tests.e2e.accessibility import check_state
from tests.e2e.browser import AUDIO_PLAYING, cut_off, launch_with_microphone, open_page

pytestmark = pytest.mark.timeout(240)
WAIT_MS = 60_000
CLIPS = Path(__file__).resolve().parents[1] / "clips" / "librispeech"
#: Real Spanish speech, not the phrase.
SPANISH_SENTENCE = Path(__file__).resolve().parents[1] / "clips" / "languages" / "es" / "fleurs-es-000.ogg"
#: Said instead of the phrase: about as long, none of its words in order (as tests/e2e/test_spoken_consent.py).
WRONG_SENTENCE = (
    "Please call Stella and ask her to bring these things with her from the store: six spoons of fresh snow peas."
)
#: What hibari says as the visitor's sample: over the `local` provider's best length's 5 s.
SAMPLE_TEXT = (
    "The quick brown fox jumps over the lazy dog near the river bank. "
    "Then it rests in the shade of an old oak tree until the evening."
)
#: Silence (room tone) after the words: the fake microphone loops its file, and the recording stops before it
#: comes round again.
TAIL_S = 6.0


@pytest.fixture(scope="module")
def up() -> Iterator[Running]:
    """One `voicegate up` taking samples only under a verified spoken consent, its phrase in English or Spanish."""
    settings = {"VOICEGATE_CONSENT": "spoken", "VOICEGATE_CONSENT_LANGUAGES": "en,es"}
    with server_dir("e2e-spoken") as root, running_up(root, settings=settings) as running:
        yield running


@functools.cache
def hibari_says(text: str) -> tuple[bytes, float]:
    """`text` in the bundled voice as the microphone hears it (1 s of room tone before, TAIL_S after), and how
    many seconds the recording must run to hold all of it."""
    voice = HibariVoice.shared()
    speech = voice.speak(text).astype(np.float32)
    heard = np.concatenate([recording(speech, voice.sample_rate, lead_s=1.0), noise(TAIL_S, 0.001, voice.sample_rate)])
    return wav_bytes(heard, voice.sample_rate), 1.0 + speech.size / voice.sample_rate + 1.0


def speak_into(microphone: Path, text: str) -> int:
    """Have the fake microphone say `text` from the next capture on; the whole seconds a recording needs."""
    audio, seconds = hibari_says(text)
    return play_into(microphone, audio, seconds)


def play_into(microphone: Path, audio: bytes, seconds: float) -> int:
    """Have the fake microphone play the WAV `audio` from the next capture on; the whole seconds a recording of its
    `seconds` of speech needs. The file is swapped in whole, so a capture starting meanwhile never reads half of it."""
    fresh = microphone.with_suffix(".new")
    fresh.write_bytes(audio)
    fresh.replace(microphone)
    return math.ceil(seconds)


def real_speech(path: Path) -> tuple[bytes, float]:
    """A clip of real speech as the microphone hears it (as `hibari_says`), and the seconds a recording needs."""
    samples, rate = soundfile.read(path, dtype="float32")
    heard = np.concatenate([recording(samples, rate, lead_s=1.0), noise(TAIL_S, 0.001, rate)])
    return wav_bytes(heard, rate), 1.0 + samples.size / rate + 1.0


async def read_aloud(page: Page, start: str, stop: str, status: str, seconds: int) -> None:
    """Press `start`, wait until the page's `status` has counted `seconds`, press `stop`. Watched on every frame:
    each count shows for one second, and an `expect` polls more slowly than that once it has waited a while."""
    await page.get_by_role("button", name=start, exact=True).click()
    await page.wait_for_function(
        COUNTED, arg=[f"{status}… (\\d+) s", seconds], polling="raf", timeout=seconds * 1000 + 10_000
    )
    await page.get_by_role("button", name=stop, exact=True).click()


#: Whether a status region of the page says `pattern` with a count of at least `least` (run over CDP: the CSP has
#: no 'unsafe-eval').
COUNTED = """([pattern, least]) => [...document.querySelectorAll('[role="status"]')].some((node) => {
  const found = node.textContent.match(new RegExp(pattern));
  return found !== null && Number(found[1]) >= least;
})"""


async def newest_sample(up: Running) -> dict[str, Any]:
    """The local user's newest sample, as the API lists it."""
    async with httpx.AsyncClient(base_url=up.base_url, timeout=10) as client:
        token = (await client.post("/dev/session")).raise_for_status().json()["accessToken"]
        listed = await client.get("/api/v1/voice-samples", headers={"Authorization": f"Bearer {token}"})
    sample: dict[str, Any] = listed.raise_for_status().json()["samples"][0]
    return sample


async def test_a_visitor_reads_the_phrase_is_told_why_a_reading_or_a_sample_failed_and_hears_their_voice(
    up: Running, playwright: Playwright, audio_files: Path
) -> None:
    microphone = audio_files / "microphone.wav"
    wrong_s = speak_into(microphone, WRONG_SENTENCE)
    stranger = audio_files / "stranger.flac"
    stranger.write_bytes((CLIPS / "2414" / "2414-128291-0005.flac").read_bytes())
    context = await launch_with_microphone(playwright, microphone)
    offline = await cut_off(context, up)
    try:
        page = await open_page(context, up)
        alert, retry = page.get_by_role("alert"), page.locator("#retry")
        status = page.locator("#phrase-status")
        # The server takes no checkbox: the page offers none, and the spoken consent comes first.
        await expect(page.get_by_role("checkbox", name=re.compile("^I consent"))).to_have_count(0)
        await expect(page.get_by_role("group", name="Your consent, in your own voice")).to_be_visible()
        await check_state(page, "spoken-consent-start")

        await page.get_by_label("Your name, as the phrase says it").fill("Ada Lovelace")
        await page.get_by_role("button", name="Get my phrase").click()
        phrase_node = page.locator("#phrase")
        await expect(phrase_node).to_contain_text("Ada Lovelace")
        phrase = await phrase_node.inner_text()
        assert "voicegate" in phrase
        assert re.search(r"My code is (\w+, ){3}\w+\.$", phrase), phrase
        assert await page.evaluate("() => document.activeElement.id") == "phrase", "the phrase is read out first"
        # A file chosen before the consent is verified waits for it: nothing is sent.
        await page.get_by_label("Voice sample", exact=True).set_input_files(stranger)
        await expect(page.locator("#sample-status")).to_have_text(
            "stranger.flac is ready. Read your consent phrase above to upload it."
        )
        await check_state(page, "spoken-consent-phrase")

        # A wrong sentence is rejected in words, with no "Try again" (only reading again helps), and the visitor
        # can read again at once.
        async with page.expect_response(lambda r: r.url.endswith("/recording")) as answered:
            await read_aloud(page, "Start reading", "Stop reading", "Reading", wrong_s)
        verdict = await (await answered.value).json()
        assert (verdict["status"], verdict["reason"]) == ("rejected", "phrase_mismatch"), verdict
        await expect(alert).to_have_text(
            "We did not hear the phrase as written; read it again, the four numbers at the end too."
        )
        await expect(retry).to_be_hidden()
        await expect(status).to_have_text("Press Start reading and read the phrase again.")
        assert await page.evaluate("() => document.activeElement.id") == "read-phrase"
        await check_state(page, "spoken-consent-rejected")

        # The phrase as shown, read by hibari: verified; the box is not needed, and the file waiting goes up.
        phrase_s = speak_into(microphone, phrase)
        async with page.expect_response(lambda r: r.url.endswith("/recording")) as answered:
            await read_aloud(page, "Start reading", "Stop reading", "Reading", phrase_s)
        verdict = await (await answered.value).json()
        assert verdict["status"] == "verified", verdict
        await expect(status).to_have_text(
            "Consent verified. Every sample you give below is checked against the voice that read the phrase."
        )
        await expect(page.locator("#phrase-step")).to_be_hidden()
        assert await page.evaluate("() => document.activeElement.id") == "record", "the focus goes on to the sample"

        # That file is another speaker (a LibriSpeech clip): refused on the queue, said in words with its score.
        await expect(alert).to_contain_text("This sample's voice does not match", timeout=WAIT_MS)
        refused = await newest_sample(up)
        assert refused["status"] == "failed", refused
        assert refused["failureReason"].startswith("speaker_mismatch"), refused
        assert refused["speakerMatch"] < THRESHOLD
        await expect(alert).to_have_text(
            f"This sample's voice does not match the voice that read the consent ({refused['speakerMatch']:.2f};"
            f" the same speaker from {THRESHOLD:.2f}). Record it yourself."
        )
        await expect(retry).to_be_hidden()
        await check_state(page, "spoken-consent-speaker-mismatch")

        # The visitor records their own sample (hibari again): accepted under the consent, with its match.
        sample_s = speak_into(microphone, SAMPLE_TEXT)
        await read_aloud(page, "Record", "Stop", "Recording", sample_s)
        await expect(page.get_by_role("status").filter(has_text="Sample ready")).to_be_visible(timeout=WAIT_MS)
        accepted = await newest_sample(up)
        assert accepted["status"] == "ready", accepted
        assert accepted["speakerMatch"] >= THRESHOLD, accepted
        await expect(alert).to_have_count(0)

        # Speak makes the voice and plays it; then the page says how much the voice sounds like the sample.
        await page.get_by_role("button", name="Speak", exact=True).click()
        await page.evaluate(AUDIO_PLAYING)
        likeness = page.locator("#speak-likeness")
        await expect(likeness).to_have_text(
            re.compile(r"^(Sounds like|Closer to|No closer to|Not) [^0-9]*\. The offline voice is a stand-in"),
            timeout=WAIT_MS,
        )
        await expect(page.locator("#speak-likeness-numbers p")).to_have_text(
            # ECAPA-TDNN scores the offline voice near 0 against its sample, so its likeness may be negative.
            re.compile(
                r"^Likeness -?0\.\d\d; the same speaker from "
                + re.escape(f"{THRESHOLD:.2f}")
                + r"; before it was adapted: -?0\.\d\d\.$"
            )
        )
        await check_state(page, "spoken-consent-voice-spoken")
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()


async def test_a_visitor_who_reads_in_spanish_gets_the_phrase_in_spanish_and_is_told_why_in_spanish(
    up: Running, playwright: Playwright, audio_files: Path
) -> None:
    microphone = audio_files / "microphone-es.wav"
    wrong_s = play_into(microphone, *real_speech(SPANISH_SENTENCE))
    context = await launch_with_microphone(playwright, microphone)
    offline = await cut_off(context, up)
    try:
        page = await open_page(context, up)
        choice = page.get_by_label("The language you will read it in")
        await expect(choice).to_be_visible()
        await expect(choice.locator("option")).to_have_text(["English", "Español"])
        await choice.select_option(label="Español")
        await page.get_by_label("Your name, as the phrase says it").fill("Ada Lovelace")
        await page.get_by_role("button", name="Get my phrase").click()
        phrase_node = page.locator("#phrase")
        await expect(phrase_node).to_contain_text("Ada Lovelace")
        await expect(phrase_node).to_have_attribute("lang", "es")
        phrase = await phrase_node.inner_text()
        assert phrase.startswith("Yo, Ada Lovelace, doy mi consentimiento para que voicegate"), phrase
        assert re.search(r"Mi código es (\w+, ){3}\w+\.$", phrase), phrase
        await check_state(page, "spoken-consent-phrase-es")

        async with page.expect_response(lambda r: r.url.endswith("/recording")) as answered:
            await read_aloud(page, "Start reading", "Stop reading", "Reading", wrong_s)
        verdict = await (await answered.value).json()
        assert (verdict["status"], verdict["reason"]) == ("rejected", "phrase_mismatch"), verdict
        await expect(page.get_by_role("alert")).to_have_text(
            "No oímos la frase tal como está escrita; léala de nuevo, también los cuatro números del final."
        )
        await check_state(page, "spoken-consent-rejected-es")
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()
