"""A voice from three samples, in the page (issue 30), in a real browser (Debian's Chromium under Playwright)
against a real `voicegate up` with the `local` provider, the browser cut off from everything but the app:
tick three ready samples, "Make a voice from selected", and the voice is made of all three (the set the API
shows), with the set's report said in words. axe-core finds nothing at either width in each state;
screenshots land in `test-artifacts/page-states/sample-set-*.png`.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from playwright.async_api import BrowserContext, expect

from devkit.audio_corpus import speech_wav
from devkit.up import Running
from tests.e2e import test_studio_page
from tests.e2e.accessibility import check_state
from tests.e2e.test_demo_page import WAIT_MS, api, open_page

pytestmark = pytest.mark.timeout(240)
#: The studio page's fixtures: one `voicegate up` for the module (`local` provider), a browser cut off from
#: everything but the app.
up = test_studio_page.up
context = test_studio_page.context


async def test_a_voice_from_three_samples(up: Running, context: BrowserContext) -> None:
    names = ["Kitchen", "Garden", "Study"]
    async with api(up) as client:
        for seed, name in enumerate(names):
            form = {"consent": "true", "language": "en", "name": name}
            files = {"file": (f"{name}.wav", speech_wav(6.0, seed=seed), "audio/wav")}
            (await client.post("/api/v1/voice-samples", data=form, files=files)).raise_for_status()
        deadline = time.monotonic() + WAIT_MS / 1000
        while {s["status"] for s in (await client.get("/api/v1/voice-samples")).json()["samples"]} != {"ready"}:
            assert time.monotonic() < deadline, "the samples were not checked in time"
            await asyncio.sleep(0.2)

    page = await open_page(context, up)
    make = page.get_by_role("button", name=re.compile("^Make a voice from selected"))
    boxes = [page.get_by_role("checkbox", name=f"Choose {name} for a new voice") for name in names]
    for box in boxes:  # a checkbox on each ready sample
        await expect(box).to_be_visible()
    await expect(make).to_be_disabled()
    for box in boxes:
        await box.check()
    await expect(make).to_have_text("Make a voice from selected (3)")
    await expect(make).to_be_enabled()
    await check_state(page, "sample-set-chosen")

    await make.click()
    status = page.locator("#sample-set-status")
    await expect(status).to_have_text(
        re.compile(r"^Voice ready from 3 samples, \d+\.\d s of speech\."), timeout=WAIT_MS
    )
    async with api(up) as client:
        voice = (await client.get("/api/voices")).raise_for_status().json()["voices"][0]
        shown = (await client.get(f"/api/voices/{voice['id']}/samples")).raise_for_status().json()
        samples = (await client.get("/api/v1/voice-samples")).raise_for_status().json()["samples"]
    by_name = {sample["name"]: sample["sampleId"] for sample in samples}
    assert voice["status"] == "ready"
    assert sorted(shown["sampleIds"]) == sorted(by_name[name] for name in names)
    assert shown["quality"]["sampleCount"] == 3
    assert f"{shown['quality']['speechS']:.1f} s of speech" in (await status.text_content() or "")
    await expect(page.locator(f'#voices li[data-voice-id="{voice["id"]}"]')).to_contain_text("ready")
    for box in boxes:  # the choice is spent
        await expect(box).not_to_be_checked()
    await check_state(page, "sample-set-made")
