"""The page when a sample's voice matches a voice another account holds (issue 78; docs/ownership.md, "Asked to
read"), in a real browser (Debian's Chromium under Playwright, cut off from everything but the app) against a real
`voicegate up` with its defaults.

Another account has enrolled the bundled hibari voice. The visitor, under the ticked box, uploads a sample in that
same voice: the page says one more step is needed, shows a phrase to read (nothing of the other account), the
visitor reads it (Chromium's fake microphone plays hibari reading it), and the page then says the sample waits for a
person, since the same voice under two accounts is what no reading settles. (The cases where the reading decides,
ready or refused, are tests/integration/test_ownership_reading.py.) Each state passes axe-core at 375 and 1280 px.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Playwright, expect

from devkit.up import Running, dev_token, running_up
from tests.conftest import server_dir
from tests.e2e.accessibility import check_state
from tests.e2e.browser import cut_off, launch_with_microphone, open_page
from tests.e2e.test_spoken_consent_page import SAMPLE_TEXT, WAIT_MS, hibari_says, read_aloud, speak_into

pytestmark = pytest.mark.timeout(240)
#: The other account's sample: the same voice, other words.
THEIRS = "A different page of the same book, read slowly by the very same voice, for another account entirely."


@pytest.fixture
def up() -> Iterator[Running]:
    with server_dir("e2e-reading") as root, running_up(root) as running:
        yield running


async def enrolled_elsewhere(up: Running) -> None:
    """Another account's sample in the hibari voice, checked and ready: its print is in the registry."""
    token = await asyncio.to_thread(dev_token, up, "someone-else@voicegate.local")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=up.base_url, timeout=30) as client:
        answer = await client.post(
            "/api/v1/voice-samples",
            data={"consent": "true"},
            files={"file": ("theirs.wav", hibari_says(THEIRS)[0], "audio/wav")},
            headers=headers,
        )
        sample = answer.raise_for_status().json()["sampleId"]
        deadline = time.monotonic() + 60
        while (status := (await client.get(f"/api/v1/voice-samples/{sample}/status", headers=headers)).json())[
            "status"
        ] != "ready":
            assert status["status"] in {"pending", "processing"}, status
            assert time.monotonic() < deadline, "the other account's sample was not checked in time"
            await asyncio.sleep(0.2)


async def test_a_sample_in_a_voice_already_enrolled_asks_for_a_reading_then_waits_for_a_person(
    up: Running, playwright: Playwright, tmp_path: Path
) -> None:
    await enrolled_elsewhere(up)
    microphone = tmp_path / "microphone.wav"
    mine = tmp_path / "mine.wav"
    mine.write_bytes(hibari_says(SAMPLE_TEXT)[0])
    speak_into(microphone, "Nothing yet.")
    context = await launch_with_microphone(playwright, microphone)
    offline = await cut_off(context, up)
    try:
        page = await open_page(context, up)
        await page.get_by_role("checkbox", name="I consent").check()
        await page.get_by_label("Voice sample", exact=True).set_input_files(mine)

        reading = page.get_by_role("group", name="Show that this voice is yours")
        await expect(reading).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#sample-status")).to_have_text("One more step: read the phrase below aloud.")
        await expect(page.locator("#own-phrase")).to_contain_text("My code is")  # filled once its answer arrives
        phrase = await page.locator("#own-phrase").inner_text()
        assert "voicegate" in phrase, phrase
        assert "My code is" in phrase, phrase
        assert "someone-else" not in await page.content(), "nothing of the other account is shown"
        await check_state(page, "ownership-asked-to-read")

        seconds = speak_into(microphone, phrase)
        async with page.expect_response(lambda r: r.url.endswith("/recording")) as answered:
            await read_aloud(page, "Start reading", "Stop reading", "Reading", seconds)
        verdict = await (await answered.value).json()
        assert verdict["status"] in {"verified", "held"}, verdict

        await expect(page.locator("#sample-status")).to_contain_text(
            "Your sample is waiting for a person to look at it", timeout=WAIT_MS
        )
        await expect(reading).to_be_hidden()
        await check_state(page, "ownership-held-after-reading")
        assert offline.blocked == [], "the page asked for nothing beyond the app"
    finally:
        await context.close()
