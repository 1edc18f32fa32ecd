"""The page meeting a spent quota (issue 79), in a real browser (Debian's Chromium under Playwright, cut off from
everything but the app) against a real `voicegate up` whose users may send 40 characters a day.

Before, Speak said "voicegate is busy; retrying by itself in 10 s." and sent the job again and again (5 POSTs in
40 s, each a 429 `quota_exceeded` whose `Retry-After` was about 66,400 s), and the server's own sentence was never
shown. A refusal that waiting a few seconds cannot cure is now said in the server's words, with when the quota
resets, with no "Try again", and not sent again. Each state passes axe-core at 375 and 1280 px."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Playwright, Request, expect

from devkit.audio_corpus import speech_wav
from devkit.up import Running, running_up
from tests.conftest import server_dir
from tests.e2e.accessibility import check_state
from tests.e2e.browser import cut_off, launch_context, open_page

pytestmark = pytest.mark.timeout(240)
WAIT_MS = 60_000
QUOTA = 40
TEXT = "Hello! This is my voice, speaking words I never said, and rather more of them than my quota allows."
#: Longer than the page's first pause before it sends a refused request again (its longest is 10 s).
WATCHED_MS = 12_000


@pytest.fixture
def up() -> Iterator[Running]:
    with (
        server_dir("e2e-quota") as root,
        running_up(root, settings={"VOICEGATE_USER_CHARACTERS": str(QUOTA)}) as running,
    ):
        yield running


async def test_a_spent_quota_is_said_with_when_it_resets_and_not_sent_again(
    up: Running, playwright: Playwright, tmp_path: Path
) -> None:
    sample = tmp_path / "mine.wav"
    sample.write_bytes(speech_wav(6.0, seed=5))
    context = await launch_context(playwright)
    offline = await cut_off(context, up)
    try:
        page = await open_page(context, up)
        await page.get_by_role("checkbox", name=re.compile("^I consent")).check()
        await page.get_by_label("Voice sample").set_input_files(sample)
        await expect(page.get_by_role("status").filter(has_text="Sample ready")).to_be_visible(timeout=WAIT_MS)

        jobs: list[Request] = []
        page.on("request", lambda r: jobs.append(r) if r.method == "POST" and r.url.endswith("/api/v1/clone") else None)
        await page.get_by_role("textbox", name="Text", exact=True).fill(TEXT)
        await page.get_by_role("button", name="Speak").click()

        alert = page.get_by_role("alert")
        await expect(alert).to_have_text(
            re.compile(
                rf"^{len(TEXT)} characters would pass your quota of {QUOTA} per 24 h \(\d+ left\); "
                # Any of duration_words' forms: at 12:00 UTC a window that resets at midnight "resets in 12 h".
                r"it resets in (\d+ s|\d+ min|\d+ h|\d+ h \d+ min)\.$"
            ),
            timeout=WAIT_MS,
        )
        await expect(page.locator("#retry")).to_be_hidden()
        await check_state(page, "quota-spent")
        await page.wait_for_timeout(WATCHED_MS)  # an observation window: long enough for the retry it used to make
        assert len(jobs) == 1, [r.url for r in jobs]
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()
