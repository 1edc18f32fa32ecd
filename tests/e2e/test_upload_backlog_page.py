"""The demo page, in a real browser cut off from everything but the app, meets a full sample backlog: a real
`voicegate up --no-consumers` whose sample queue holds more than VOICEGATE_UPLOAD_BACKLOG_SECONDS of work
answers the upload 503 `backlog_full`; the page says so in words and sends the sample again by itself; once the
queue is worked off the upload is taken, and a `voicegate worker` started beside `up` checks it. Screenshot in
`test-artifacts/demo-page/`."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.async_api import Playwright, expect

from devkit.audio_corpus import speech_wav
from devkit.up import Running, running_up, start_worker
from tests.conftest import server_dir
from tests.e2e.browser import cut_off, launch_context, open_page, screenshot

pytestmark = pytest.mark.timeout(180)
WAIT_MS = 60_000
#: Seconds of work `up` takes on: with no pace measured yet, two messages.
LIMIT_S = 2


@pytest.fixture(scope="module")
def up() -> Iterator[Running]:
    """`voicegate up` with no consumers of its own and a backlog limit of two seconds of work."""
    settings = {"VOICEGATE_UPLOAD_BACKLOG_SECONDS": str(LIMIT_S)}
    with server_dir("e2e-backlog") as root, running_up(root, None, "--no-consumers", settings=settings) as running:
        yield running


async def test_the_page_says_the_backlog_is_full_and_sends_the_sample_again_once_it_is_not(
    up: Running, playwright: Playwright, tmp_path: Path
) -> None:
    sample = tmp_path / "my voice.wav"
    sample.write_bytes(speech_wav(5.0, seed=11))
    with psycopg.connect(up.pg.dsn, autocommit=True) as sql:
        held = [
            sql.execute("select pgmq.send('voice_sample_process', '{}'::jsonb)").fetchone()[0]  # type: ignore[index]
            for _ in range(LIMIT_S + 1)
        ]
        context = await launch_context(playwright)
        offline = await cut_off(context, up)
        worker = None
        try:
            page = await open_page(context, up)
            await page.get_by_role("checkbox", name=re.compile("^I consent")).check()
            await page.get_by_label("Voice sample").set_input_files(sample)

            notice = page.locator("#notice")
            await expect(notice).to_contain_text(
                re.compile(r"more samples to check than it takes on right now; sending yours again by itself in \d+ s"),
                timeout=WAIT_MS,
            )
            await expect(page.get_by_role("alert")).to_have_count(0)  # a wait the page rides out, not a failure
            await screenshot(page, "upload-backlog-full")
            assert sql.execute("select count(*) from public.voice_samples").fetchone() == (0,)

            sql.execute("select pgmq.delete('voice_sample_process', %s::bigint[])", (held,))
            await expect(notice).to_have_text("", timeout=WAIT_MS)
            worker = start_worker(up.pg.data_dir.parent, tmp_path / "worker.log")
            await expect(page.get_by_role("status").filter(has_text="Sample ready")).to_be_visible(timeout=WAIT_MS)
            assert sql.execute("select count(*) from public.voice_samples where status = 'ready'").fetchone() == (1,)
            assert offline.blocked == []
        finally:
            if worker is not None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
            assert context.browser is not None
            await context.browser.close()
