"""Debian's Chromium under Playwright for the demo page's tests: launched as this machine allows, cut off
from every origin but the app's, and asked for its state where the page's CSP forbids eval."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Page, Playwright, Route, expect

from devkit.up import Running

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "demo-page"
#: Without the background-networking flags Chromium keeps dialling Google's hosts, which this machine
#: refuses; without --no-sandbox it will not start as root.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: What the page does when "audio playing" is asked for, as a promise Playwright can await: the
#: page's CSP refuses `wait_for_function` (it evaluates a string), while `evaluate` runs over CDP.
AUDIO_PLAYING = """new Promise((resolve) => {
  const audio = document.querySelector("audio");
  const check = () => audio.currentTime > 0 && !audio.paused && resolve(audio.currentTime);
  if (!check()) audio.addEventListener("timeupdate", check);
})"""


@dataclass
class Offline:
    """Every request not to the app is aborted; what was attempted is kept to be asserted on."""

    origin: str
    blocked: list[str] = field(default_factory=list)

    async def handle(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin or parts.scheme in {"data", "blob"}:
            await route.continue_()
        else:
            self.blocked.append(url)
            await route.abort("internetdisconnected")


async def cut_off(context: BrowserContext, up: Running) -> Offline:
    """Networking off for `context` but for the app itself."""
    offline = Offline(up.base_url)
    await context.route("**/*", offline.handle)
    return offline


def chromium() -> str:
    """Debian's Chromium, which `make test` installs where missing (Playwright never downloads one)."""
    assert CHROMIUM.exists(), "Chromium is missing: run `bash .ci/ensure-packages` (make test does)"
    return str(CHROMIUM)


async def launch_context(playwright: Playwright, *args: str, **context: object) -> BrowserContext:
    """A new browser (fresh temporary profile) and its one context; closing the context's browser is the
    caller's (`await context.browser.close()`)."""
    browser = await playwright.chromium.launch(executable_path=chromium(), args=[*LAUNCH_ARGS, *args])
    return await browser.new_context(viewport={"width": 900, "height": 1000}, **context)  # type: ignore[arg-type]


async def launch_with_microphone(playwright: Playwright, microphone: Path) -> BrowserContext:
    """`launch_context` with Chromium's fake microphone looping the WAV `microphone`, allowed to record."""
    return await launch_context(
        playwright,
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        permissions=["microphone"],
    )


async def open_page(context: BrowserContext, up: Running) -> Page:
    """The page in a new tab, signed in as the local dev user, with no script error on the way."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{up.base_url}/")
    await expect(page.get_by_text("Signed in as you@voicegate.local")).to_be_visible()
    assert errors == []
    return page


async def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """The page as it is now, wide and phone-narrow, into the test artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=path, full_page=full_page)
    size = page.viewport_size
    await page.set_viewport_size({"width": 375, "height": 800})
    await page.screenshot(path=ARTIFACTS / f"{name}-narrow.png", full_page=full_page)
    if size is not None:
        await page.set_viewport_size(size)
    return path


def wav_seconds(data: bytes) -> float:
    """The length of a mono 16-bit PCM WAV (anything else fails the test)."""
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        assert reader.getnframes() > 0
        return reader.getnframes() / reader.getframerate()
