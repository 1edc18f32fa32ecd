"""The demo page in a real browser (Debian's Chromium, driven by Playwright) against a real `voicegate up`
with the `local` provider, the browser cut off from everything but the app:

- a first-time visitor records 6 s from Chromium's fake microphone (fed a speech WAV) and hears the
  result, timed from opening the page to the audio playing;
- a chosen WAV file, the quality report, Speak, the audio and its download, and deleting the sample;
- a 1 s file is refused with "sample too short" in the alert and no "Try again" (only another file helps);
- the database stopped for 10 s mid-job: the page says it is retrying, then plays the audio by itself;
- Swagger UI at `/schema/swagger` renders and runs a request; `/schema` passes axe-core in each state a
  developer meets, and its Try it out bodies are the documented examples;
- `voicegate serve` with DATABASE_URL serves the page and has no dev sign-in.

Screenshots of every end state (wide and narrow) land in `test-artifacts/demo-page/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import psycopg
import pytest
from playwright.async_api import (
    Locator,
    Page,
    Playwright,
    Response,
    Route,
    expect,
)
from psycopg import sql

from devkit.audio_corpus import RATE, recording, speech_mono, speech_wav, wav_bytes
from devkit.certs import make_chain
from devkit.db import create_user
from devkit.up import Running, is_ready, running_up, wait_for
from standins.dev_tokens import mint_service_key, mint_user_token
from standins.postgres import free_port
from tests.conftest import server_dir
from tests.e2e.accessibility import check_state
from tests.e2e.browser import (
    ARTIFACTS,
    AUDIO_PLAYING,
    cut_off,
    launch_context,
    launch_with_microphone,
    open_page,
    screenshot,
    wav_seconds,
)
from tests.support import frozen

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
TEXT = "Hello there. This is my cloned voice, reading a short sentence for the browser test."
WORDS = len(TEXT.split())
#: The visitor's whole path, page open to audio playing, recording included (the issue's target).
FIRST_VISIT_TARGET_S = 30.0
RECORD_S = 6
WAIT_MS = 60_000


def js_round(value: float) -> int:
    """JavaScript's `Math.round`, as the page rounds: halves go up (Python's `round` takes them to even)."""
    return math.floor(value + 0.5)


def js_fixed(value: float, digits: int) -> str:
    """JavaScript's `toFixed` of a positive number, as the page formats: the exact binary value rounded,
    ties up (Python's format takes a tie such as 2.25 to even: 2.2 where the page shows 2.3)."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="module")
def up() -> Iterator[Running]:
    """One `voicegate up` (embedded Postgres, in-process consumers, `local` provider) for the module."""
    with server_dir("e2e-page") as root, running_up(root) as running:
        yield running


@contextlib.asynccontextmanager
async def api(up: Running) -> AsyncIterator[httpx.AsyncClient]:
    """The API as the page's local user, through the same dev sign-in the page uses."""
    async with httpx.AsyncClient(base_url=up.base_url, timeout=10) as client:
        session = (await client.post("/dev/session")).raise_for_status().json()
        client.headers["Authorization"] = f"Bearer {session['accessToken']}"
        yield client


async def samples_of(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """The local user's samples, newest first, as the list route gives them."""
    samples: list[dict[str, Any]] = (await client.get("/api/v1/voice-samples")).raise_for_status().json()["samples"]
    return samples


class JobProgress:
    """Holds the job's status answers back while the test looks: first `processing` with no progress,
    then with `progress` (what the backend will report per sentence), then the real answers."""

    def __init__(self) -> None:
        self.phase = "no progress"

    async def handle(self, route: Route) -> None:
        if self.phase == "no progress":
            await route.fulfill(json={"status": "processing", "progress": None})
        elif self.phase == "progress":
            await route.fulfill(json={"status": "processing", "progress": {"done": 1, "total": 3, "unit": "sentences"}})
        else:
            await route.fallback()


async def speak_and_check_audio(page: Page, *, watch_progress: bool = False) -> float:
    """Type the text, press Speak, and check what the `<audio>` gets: a WAV as long as the text."""
    await page.get_by_role("textbox", name="Text", exact=True).fill(TEXT)
    progress = JobProgress()
    if watch_progress:
        await page.route("**/api/v1/clone/*/status", progress.handle)
    await page.get_by_role("button", name="Speak").click()
    if watch_progress:
        bar = page.get_by_role("progressbar", name="Synthesis progress")
        await expect(page.get_by_role("status").filter(has_text="Synthesizing…")).to_be_visible()
        await expect(bar).not_to_have_attribute("value", re.compile(".*"))  # indeterminate
        progress.phase = "progress"
        await expect(page.get_by_role("status").filter(has_text="Synthesizing… 1 of 3 sentences")).to_be_visible()
        await expect(bar).to_have_attribute("value", "1")
        await expect(bar).to_have_attribute("max", "3")
        progress.phase = "real"
    audio = page.locator("#player")
    signed = re.compile(r"^http://127\.0\.0\.1:\d+/storage/v1/object/sign/voice-renders/")
    await expect(audio).to_have_attribute("src", signed, timeout=WAIT_MS)
    src = await audio.get_attribute("src")
    assert src is not None
    async with httpx.AsyncClient(timeout=10) as client:
        fetched = await client.get(src)
    assert fetched.status_code == 200
    seconds = wav_seconds(fetched.content)
    # About 2.5 words a second for espeak-ng at the sample's pace; generous either way.
    assert 0.15 * WORDS < seconds < 0.8 * WORDS, seconds
    done = await page.get_by_role("status").filter(has_text="Done.").inner_text()
    # The page shows the job's durationMs (whole milliseconds), to a tenth of a second.
    assert f"{js_fixed(round(seconds * 1000) / 1000, 1)} s of speech" in done

    download = page.get_by_role("link", name="Download WAV")
    href = await download.get_attribute("href")
    assert href is not None
    assert href.startswith(src)
    async with httpx.AsyncClient(timeout=10) as client:
        attachment = await client.get(href)
    assert attachment.headers["content-disposition"].startswith("attachment")
    assert attachment.content == fetched.content
    return seconds


async def test_a_first_time_visitor_records_a_sample_and_hears_it_within_30_s(
    up: Running, playwright: Playwright, audio_files: Path
) -> None:
    # The fake microphone loops this file: every 6 s of it holds speech.
    microphone = audio_files / "microphone.wav"
    microphone.write_bytes(speech_wav(10.0, seed=7))
    context = await launch_with_microphone(playwright, microphone)
    offline = await cut_off(context, up)
    try:
        assert f"demo page: {up.base_url}/".encode() in up.log.read_bytes(), "`up` prints where the page is"
        started = time.monotonic()
        page = await open_page(context, up)
        await page.get_by_role("checkbox", name=re.compile("^I consent")).check()
        await page.get_by_role("button", name="Record").click()
        await expect(page.get_by_role("status").filter(has_text=f"Recording… {RECORD_S} s")).to_be_visible(
            timeout=RECORD_S * 1000 + 5000
        )
        await page.get_by_role("button", name="Stop").click()
        await expect(page.get_by_role("button", name="Record")).to_be_visible()
        await expect(page.get_by_role("status").filter(has_text="Sample ready")).to_be_visible(timeout=WAIT_MS)
        await page.get_by_role("button", name="Speak").click()
        await page.evaluate(AUDIO_PLAYING)
        elapsed = time.monotonic() - started

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "first-visit.json").write_text(
            json.dumps({"pageOpenToAudioPlayingS": round(elapsed, 2), "recordingS": RECORD_S, "provider": "local"})
        )
        assert elapsed <= FIRST_VISIT_TARGET_S, f"page open → audio playing took {elapsed:.1f} s"
        assert offline.blocked == []

        # What Chromium recorded and the page uploaded: WebM/Opus holding the fake microphone's speech.
        async with api(up) as client:
            newest = (await samples_of(client))[0]
        quality = newest["quality"]
        assert (newest["status"], newest["sniffedType"]) == ("ready", "audio/webm")
        assert quality["codec"] == "opus"
        assert RECORD_S - 0.5 < quality["durationS"] < RECORD_S + 3
        assert quality["speechDurationS"] > 3, quality
        assert quality["speechRatio"] > 0.4, quality
        await expect(page.locator("#q-speech")).to_have_text(f"{js_round(quality['speechRatio'] * 100)} % of the time")

        # The same visitor goes on: the next text speaks with the same voice, checked as a file.
        await speak_and_check_audio(page)
        await screenshot(page, "record-and-speak")
    finally:
        assert context.browser is not None
        await context.browser.close()


async def test_a_chosen_file_is_checked_spoken_downloaded_and_deleted(
    up: Running, playwright: Playwright, audio_files: Path
) -> None:
    sample = audio_files / "my voice.wav"
    sample.write_bytes(speech_wav(6.0, seed=3))
    context = await launch_context(playwright)
    offline = await cut_off(context, up)
    try:
        page = await open_page(context, up)
        consent = page.get_by_role("checkbox", name=re.compile("^I consent"))
        await page.get_by_label("Voice sample").set_input_files(sample)
        # Nothing leaves the browser before consent.
        await expect(page.get_by_role("status").filter(has_text="Tick the consent box")).to_be_visible()
        await page.get_by_role("checkbox", name=re.compile("^Keep my sample")).check()
        await consent.check()
        await expect(page.get_by_role("status").filter(has_text="Sample ready")).to_be_visible(timeout=WAIT_MS)
        for shown in ("Duration", "Loudness", "Signal to noise", "Speech", "Verdict"):
            await expect(page.locator("#quality")).to_contain_text(shown)
        await expect(page.locator("#q-loudness")).to_have_text(re.compile(r"^-\d+\.\d LUFS$"))
        await expect(page.locator("#q-snr")).to_have_text(re.compile(r"^\d+ dB$"))
        await expect(page.locator("#q-verdict")).to_have_text(re.compile("^(good|usable)$"))
        await speak_and_check_audio(page, watch_progress=True)
        await screenshot(page, "upload-and-speak")

        async with api(up) as client:
            before = await samples_of(client)
        assert before[0]["keepSample"] is True  # the optional consent travelled with the upload
        deletes = page.get_by_role("button", name=re.compile("^Delete sample"))
        await expect(deletes).to_have_count(len(before))
        await deletes.first.click()
        await page.get_by_role("dialog", name="Delete?").get_by_role("button", name="Delete").click()
        await expect(deletes).to_have_count(len(before) - 1, timeout=WAIT_MS)
        async with api(up) as client:
            after = await samples_of(client)
            assert [s["sampleId"] for s in after] == [s["sampleId"] for s in before[1:]]
            gone = await client.get(f"/api/v1/voice-samples/{before[0]['sampleId']}/status")
            assert gone.status_code == 404
        await expect(page.get_by_role("alert")).to_have_count(0)
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()


async def test_a_one_second_sample_is_refused_as_too_short_with_no_try_again(
    up: Running, playwright: Playwright, audio_files: Path
) -> None:
    short = audio_files / "short.wav"
    short.write_bytes(wav_bytes(recording(speech_mono(1.0, seed=2)[: RATE // 2], lead_s=0.25)))
    assert abs(wav_seconds(short.read_bytes()) - 1.0) < 0.01
    context = await launch_context(playwright)
    offline = await cut_off(context, up)
    try:
        page = await open_page(context, up)
        await page.get_by_role("checkbox", name=re.compile("^I consent")).check()
        await page.get_by_label("Voice sample").set_input_files(short)
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("sample too short", timeout=WAIT_MS)
        await expect(page.locator("#q-verdict")).to_have_text("refused")
        # No tip "too short for best results" beside the refusal (issue 47): a refused sample has no results.
        await expect(page.locator("#advice")).not_to_contain_text("best results")
        # The refusal is one the user acts on: said beside the file they gave, not in the bar at the top.
        await expect(page.locator("#sample-section").get_by_role("alert")).to_contain_text("sample too short")
        await expect(page.locator("#problem-bar")).to_be_hidden()
        # A refused sample is never what Speak speaks with (a ready voice made before it still is).
        await expect(page.locator("#speak-target")).not_to_contain_text("new sample")
        # Sending the same second again cannot help: the page says what can, and offers no "Try again".
        await expect(page.locator("#retry")).to_be_hidden()
        await expect(page.get_by_role("status").filter(has_text="Record again, or choose another file")).to_be_visible()
        await screenshot(page, "sample-too-short")
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()


async def test_refusals_are_put_in_words_and_a_503_is_waited_out_by_itself(
    up: Running, playwright: Playwright, audio_files: Path
) -> None:
    not_audio = audio_files / "notes.wav"
    not_audio.write_bytes(b"these are my notes, not a recording\n" * 100)
    too_large = audio_files / "long.wav"
    too_large.write_bytes(wav_bytes(np.zeros(RATE * 230, dtype=np.float32)))  # 22 MB; `local` takes 20 MB
    sample = audio_files / "fine.wav"
    sample.write_bytes(speech_wav(6.0, seed=4))
    context = await launch_context(playwright)
    offline = await cut_off(context, up)
    try:
        page = await open_page(context, up)
        await page.get_by_role("checkbox", name=re.compile("^I consent")).check()
        alert, retry = page.get_by_role("alert"), page.locator("#retry")

        # Refusals of the file itself: the same file again would be refused again, so no "Try again".
        await page.get_by_label("Voice sample").set_input_files(not_audio)
        await expect(alert).to_have_text(re.compile("^That file is not audio voicegate can read"))
        await expect(retry).to_be_hidden()
        await page.get_by_label("Voice sample").set_input_files(too_large)
        await expect(alert).to_have_text(
            re.compile(r"^That file is too large\. The sample is \d+ bytes; local accepts")
        )
        await expect(retry).to_be_hidden()

        # The server is briefly unavailable for the next upload: the page says it retries after the
        # Retry-After it was given, then sends the same file with the same Idempotency-Key by itself.
        unavailable = {"answered": 0}
        keys: list[str | None] = []

        async def once_unavailable(route: Route) -> None:
            if route.request.method != "POST":
                await route.fallback()
                return
            keys.append(await route.request.header_value("idempotency-key"))
            if unavailable["answered"] == 0:
                unavailable["answered"] += 1
                problem = {
                    "type": "about:blank",
                    "title": "Service Unavailable",
                    "status": 503,
                    "code": "database_unavailable",
                }
                await route.fulfill(status=503, headers={"Retry-After": "2"}, json=problem)
            else:
                await route.fallback()

        await page.route("**/api/v1/voice-samples", once_unavailable)
        await page.get_by_label("Voice sample").set_input_files(sample)
        notice = page.get_by_role("status").filter(has_text="voicegate is unavailable right now")
        await expect(notice).to_have_text("voicegate is unavailable right now; retrying by itself in 2 s.")
        await expect(alert).to_have_count(0)
        await expect(retry).to_be_hidden()
        await screenshot(page, "unavailable-retry-after")
        await expect(page.get_by_role("status").filter(has_text="Sample ready")).to_be_visible(timeout=WAIT_MS)
        await expect(notice).to_have_count(0)
        await expect(alert).to_have_count(0)
        assert unavailable["answered"] == 1
        assert len(keys) == 2, keys
        assert keys[0], "the upload carries an Idempotency-Key"
        assert keys[1] == keys[0], "the repeat is the same upload, stored once"
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()


#: What the page's problem area shows over time, kept by a MutationObserver (run over CDP: the CSP has no
#: 'unsafe-eval'): every text the notice and the alert took, and whether "Try again" was ever offered.
WATCH_PROBLEMS = """() => {
  const seen = { notices: [], alerts: [], retryShown: false };
  window.voicegateSeen = seen;
  const area = document.getElementById("problem");
  const look = () => {
    for (const [id, list] of [["notice", seen.notices], ["alert", seen.alerts]]) {
      const node = document.getElementById(id);
      const text = node ? node.textContent : "";
      if (text !== (list.length ? list[list.length - 1] : "")) list.push(text);
    }
    seen.retryShown ||= !document.getElementById("retry").hidden;
  };
  new MutationObserver(look).observe(area, { subtree: true, childList: true, characterData: true, attributes: true });
}"""
#: How long the database stays stopped (the issue's outage).
OUTAGE_S = 10.0
#: What the visitor speaks in the outage test: sentences enough that the job, spoken a piece at a time with its
#: progress recorded after each, is still under way when the database stops right after accepting it. A short
#: text was sometimes spoken whole first, by a worker that sends an attempt's statements with its batch's.
LONG_TEXT = " ".join(
    f"This is sentence number {n} of a longer reading, spoken in my cloned voice while the database is away."
    for n in range(1, 13)
)


#: Seconds after the database answers again within which the work it stopped is taken again.
RESUME_S = 10.0
#: The queues of the page's job: the voice's clone (and its preview) and the synthesis.
JOB_QUEUES = ("voice_clone_process", "voice_preview", "voice_synthesis")
#: A message read less than this long ago is invisible for at least this much longer (30 s from its read, extended
#: by its holder): one left over from a read before a pause of 10 s is invisible for less than this.
FRESH_READ_S = 20


def read_before_the_pause(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Messages of the job's queues read and still invisible, whose read is older than a fresh one's can be."""
    found: list[tuple[Any, ...]] = []
    for queue in JOB_QUEUES:
        query = sql.SQL(
            "select %s, msg_id, read_ct, round(extract(epoch from vt - now())::numeric, 1) from pgmq.{}"
            " where read_ct > 0 and vt > now() and vt < now() + make_interval(secs => %s)"
        ).format(sql.Identifier(f"q_{queue}"))
        found += conn.execute(query, (queue, FRESH_READ_S)).fetchall()
    return found


async def taken_again(conn: psycopg.Connection[Any], *, within: float) -> None:
    """Wait until no message of the job's queues read before the pause is left invisible: each has been read again
    (or handled); fail past `within` seconds."""
    give_up = time.monotonic() + within
    while left := read_before_the_pause(conn):
        assert time.monotonic() < give_up, f"still invisible since before the pause: {left}"
        await asyncio.sleep(0.1)


async def test_the_page_rides_out_a_10_s_database_outage_mid_job_by_itself(
    up: Running, playwright: Playwright, audio_files: Path
) -> None:
    sample = audio_files / "outage.wav"
    sample.write_bytes(speech_wav(6.0, seed=5))
    context = await launch_context(playwright)
    offline = await cut_off(context, up)
    answers: list[tuple[str, int, str | None]] = []
    try:
        page = await open_page(context, up)
        await page.set_viewport_size({"width": 1280, "height": 900})
        page.on("response", lambda r: answers.append((r.url, r.status, r.headers.get("retry-after"))))
        await page.get_by_role("checkbox", name=re.compile("^I consent")).check()
        await page.get_by_label("Voice sample").set_input_files(sample)
        await expect(page.get_by_role("status").filter(has_text="Sample ready")).to_be_visible(timeout=WAIT_MS)
        await page.evaluate(WATCH_PROBLEMS)
        await page.get_by_role("textbox", name="Text", exact=True).fill(LONG_TEXT)

        def is_job(response: Response) -> bool:
            return response.request.method == "POST" and response.url.endswith("/api/v1/clone")

        with psycopg.connect(up.pg.dsn, autocommit=True) as conn:
            async with page.expect_response(is_job) as accepted:
                await page.get_by_role("button", name="Speak").click()
            job_answer = await accepted.value
            job = await job_answer.json()
            [(before,)] = conn.execute("select status from synthesis_jobs where id = %s", (job["jobId"],)).fetchall()
            with frozen(up.pg.data_dir):
                stopped = time.monotonic()
                assert before in {"queued", "processing"}, "the database stops while the job is under way"
                # The page meets the outage (a status poll answered 503) and says so, calmly.
                area = page.locator("#problem")
                await expect(area).to_contain_text("voicegate is unavailable right now", timeout=5000)
                # What the visitor sees where they are (by Speak): the notice stays pinned on top.
                await screenshot(page, "outage-waiting", full_page=False)
                await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
            restarted = time.monotonic()
            assert restarted - stopped < OUTAGE_S + 2, "the outage is the 10 s asked for"
            # The job resumes as the database answers: what a consumer held as it stopped is read again within
            # seconds, not after the 30 s its message was read invisible for (how long the rest of the job then
            # takes is the machine's CPU: 2-30 s, on a quiet machine and beside three other suites).
            await taken_again(conn, within=RESUME_S)

            # Nobody clicks: the poll loop carries on once the database answers, and the audio plays.
            audio = page.locator("#player")
            signed = re.compile(r"^http://127\.0\.0\.1:\d+/storage/v1/object/sign/voice-renders/")
            await expect(audio).to_have_attribute("src", signed, timeout=WAIT_MS)
            await asyncio.wait_for(page.evaluate(AUDIO_PLAYING), 30)
            recovered = time.monotonic() - restarted
            [(after,)] = conn.execute("select status from synthesis_jobs where id = %s", (job["jobId"],)).fetchall()
        src = await audio.get_attribute("src")
        assert src is not None
        async with httpx.AsyncClient(timeout=10) as client:
            fetched = await client.get(src)
        assert (fetched.status_code, after) == (200, "succeeded")
        assert wav_seconds(fetched.content) > 1
        await expect(page.get_by_role("status").filter(has_text="Done.")).to_be_visible()
        await expect(page.locator("#notice")).to_have_text("")
        await expect(page.get_by_role("alert")).to_have_count(0)
        await screenshot(page, "outage-recovered")

        seen = await page.evaluate("() => window.voicegateSeen")
        unavailable = [a for a in answers if a[1] == 503 and "/api/v1/clone/" in a[0]]
        assert unavailable, "the page's polls met the stopped database"
        assert {retry_after for _, _, retry_after in unavailable} == {"2"}
        assert seen["notices"][0] == "voicegate is unavailable right now; retrying by itself in 2 s.", seen
        assert seen["notices"][-1] == "", "the notice goes once the server answers"
        # Said once a pause, not every second: each 503 may change it once, and its end clears it. The job's
        # polls are not alone in waiting patiently: the voices list the page refreshes meets the outage too.
        refused = [a for a in answers if a[1] == 503 and "/api/" in a[0]]
        assert len(seen["notices"]) <= len(refused) + 1, (seen, refused)
        assert (seen["alerts"], seen["retryShown"]) == ([], False), "no error, no Try again, at any moment"
        assert await job_answer.request.header_value("idempotency-key"), "Speak's job could be sent again safely"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "outage.json").write_text(
            json.dumps(
                {"outageS": OUTAGE_S, "restartToAudioPlayingS": round(recovered, 2), "answers503": len(unavailable)}
            )
        )
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()


async def test_swagger_ui_renders_and_runs_a_request_with_the_network_off(up: Running, playwright: Playwright) -> None:
    context = await launch_context(playwright)
    offline = await cut_off(context, up)
    try:
        page = await context.new_page()
        await page.goto(f"{up.base_url}/schema/swagger")
        await expect(page.get_by_role("heading", name=re.compile("^voicegate"))).to_be_visible()
        operation = page.locator(".opblock-summary", has_text="/healthz").first
        await operation.click()
        await page.get_by_role("button", name="Try it out").click()
        await page.get_by_role("button", name="Execute").click()
        status = page.locator(".live-responses-table tbody td.response-col_status")
        await expect(status).to_have_text(re.compile(r"^\s*200\b"))
        await expect(page.locator(".live-responses-table")).to_contain_text('"status": "ok"')
        await screenshot(page, "swagger-offline", full_page=False)
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()


def operation(page: Page, method: str, path: str) -> Locator:
    """One operation of the docs at `/schema`."""
    return page.locator(f'.opblock-{method}:has(.opblock-summary-path[data-path="{path}"])')


async def try_it_out(page: Page, method: str, path: str) -> Locator:
    """Open an operation at `/schema` and press Try it out; the operation."""
    block = operation(page, method, path)
    await block.locator(".opblock-summary-control").click()
    await block.get_by_role("button", name="Try it out").click()
    return block


async def test_the_api_docs_pass_axe_and_try_it_out_sends_working_examples_offline(
    up: Running, playwright: Playwright
) -> None:
    """`/schema` as a developer uses it, cut off from the network, each state with 0 axe-core violations at 375
    and 1280 px: the list, the Authorize dialog, a request run with the page's own user (its example body as
    Try it out fills it in: 201), the clone body's example (sampleId alone), and the upload form (its fields
    filled with their examples, not "string": with a file chosen, the first Execute is a 202)."""
    async with httpx.AsyncClient(base_url=up.base_url) as client:
        session = (await client.post("/dev/session")).json()
    auth = {"Authorization": f"Bearer {session['accessToken']}"}
    context = await launch_context(playwright)
    offline = await cut_off(context, up)
    try:
        page = await context.new_page()
        await page.goto(f"{up.base_url}/schema")
        await expect(page.get_by_role("heading", name=re.compile("^voicegate"))).to_be_visible()
        assert await page.evaluate("() => document.documentElement.lang") == "en"
        await check_state(page, "schema")

        await page.locator(".auth-wrapper").get_by_role("button", name="Authorize").click()
        dialog = page.locator(".dialog-ux")
        await expect(dialog).to_be_visible()
        await check_state(page, "schema-authorize")
        await dialog.locator("input").fill(session["accessToken"])
        await dialog.get_by_role("button", name=re.compile("^Authorize")).click()
        await dialog.locator("button.btn-done").click()

        create = await try_it_out(page, "post", "/v1/reflections")
        assert json.loads(await create.locator("textarea.body-param__text").input_value()) == {"name": "Ada"}
        await create.get_by_role("button", name="Execute").click()
        await expect(create.locator(".live-responses-table tbody td.response-col_status")).to_have_text(
            re.compile(r"^\s*201")
        )
        await check_state(page, "schema-executed")
        async with httpx.AsyncClient(base_url=up.base_url) as client:
            listed = (await client.get("/v1/reflections", headers=auth)).json()
        assert "Ada" in [item["name"] for item in listed["reflections"]]

        clone = await try_it_out(page, "post", "/api/v1/clone")
        body = json.loads(await clone.locator("textarea.body-param__text").input_value())
        assert set(body) == {"sampleId", "text"}, body  # not also voiceId, which the route refuses

        upload = await try_it_out(page, "post", "/api/v1/voice-samples")
        await expect(upload.locator('tr[data-property-name="keep_sample"]')).to_be_visible()
        await check_state(page, "schema-upload-form")
        filled = await upload.locator("tr[data-property-name] :is(input[type=text], textarea)").evaluate_all(
            "boxes => boxes.map((box) => box.value)"
        )
        assert "string" not in filled, filled  # Swagger's stand-in for a text field without an example
        await upload.locator("input[type=file]").set_input_files(REPO / "docs" / "quickstart-sample.wav")
        await upload.get_by_role("button", name="Execute").click()
        await expect(upload.locator(".live-responses-table tbody td.response-col_status")).to_have_text(
            re.compile(r"^\s*202")
        )
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()


@dataclass
class Served:
    """`voicegate serve` for a Supabase project: DATABASE_URL (here `up`'s Postgres) and the project's keys."""

    base_url: str
    jwt_secret: str
    supabase_url: str = "https://abcdefgh.supabase.co"
    publishable_key: str = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"


@pytest.fixture
def served(up: Running, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    served = Served(base_url=f"http://127.0.0.1:{port}", jwt_secret="serve-test-jwt-secret-" + "y" * 32)
    chain = make_chain("ec").write(tmp_path / "c2pa")
    env = {
        **os.environ,
        **{name: value for name, value in chain.items() if name.startswith("VOICEGATE_C2PA_")},
        "DATABASE_URL": up.pg.dsn,
        "SUPABASE_URL": served.supabase_url,
        "SUPABASE_JWT_SECRET": served.jwt_secret,
        "SUPABASE_SERVICE_ROLE_KEY": mint_service_key(served.jwt_secret),
        "SUPABASE_PUBLISHABLE_KEY": served.publishable_key,
        "VOICEGATE_PORT": str(port),
        "VOICEGATE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "voicegate.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        wait_for(lambda: is_ready(served.base_url), 60, "serve /readyz 200", process)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)


async def test_voicegate_serve_has_no_dev_sign_in_and_the_page_signs_in_with_a_magic_link(
    up: Running, served: Served, playwright: Playwright
) -> None:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=5) as client:
        assert (await client.post("/dev/session")).status_code == 404
        assert (await client.get("/config.json")).json()["mode"] == "supabase"
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.post(f"{up.base_url}/dev/session")).status_code == 200, "`up` (embedded) has it"

    email = "magic@example.test"
    with psycopg.connect(up.pg.dsn, autocommit=True) as conn:
        user_id = create_user(conn, email)
    context = await launch_context(playwright)
    offline = await cut_off(context, Running(process=up.process, base_url=served.base_url, pg=up.pg, log=up.log))
    otp_requests: list[tuple[str, dict[str, str], Any]] = []

    async def supabase_auth(route: Route) -> None:
        """Supabase Auth's answer to `/otp`: the mail is "sent" (its link is followed by hand below)."""
        request = route.request
        otp_requests.append((request.url, dict(request.headers), request.post_data_json))
        await route.fulfill(json={})

    try:
        page = await context.new_page()
        # Page-level routes win over the context's: only Supabase Auth's origin is answered, by this stub.
        await page.route(f"{served.supabase_url}/auth/v1/**", supabase_auth)
        await page.goto(f"{served.base_url}/")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await expect(page.get_by_role("button", name="Record")).to_be_hidden()
        await page.get_by_label("Email").fill(email)
        await page.get_by_role("button", name="Send sign-in link").click()
        await expect(page.get_by_role("status").filter(has_text=f"We sent a sign-in link to {email}")).to_be_visible()
        [(url, headers, body)] = otp_requests
        back = f"{served.base_url}/"
        assert url == f"{served.supabase_url}/auth/v1/otp?redirect_to={quote(back, safe='')}"
        assert headers["apikey"] == served.publishable_key
        assert body == {"email": email, "create_user": True, "data": {}}

        # The link in the mail leads back here with the session in the fragment, as Supabase Auth sends it;
        # a mail client opens it in a new tab, and a pasted link lands in this one (a fragment change only).
        token = mint_user_token(served.jwt_secret, user_id, email=email, issuer=f"{served.supabase_url}/auth/v1")
        link = f"{back}#access_token={token}&expires_in=3600&refresh_token=r1&token_type=bearer&type=magiclink"
        for tab in (await context.new_page(), page):
            await tab.goto(link)
            await expect(tab.get_by_text(f"Signed in as {email}.")).to_be_visible()
            assert tab.url == back, "the token is taken out of the address bar"
            await expect(tab.get_by_role("button", name="Record")).to_be_visible()
            await expect(tab.locator("#samples")).to_contain_text("No samples yet.")
        await screenshot(page, "magic-link-signed-in")
        assert offline.blocked == []
    finally:
        assert context.browser is not None
        await context.browser.close()
