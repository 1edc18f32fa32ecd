"""The documentation site at `/docs/`, served by a real `voicegate up` run from a checkout whose site was never
built: `up` builds it (`mkdocs build --strict`, the API reference made from the app's document) and serves
it, and Debian's Chromium, cut off from everything but the app, renders it, searches it and opens the API
reference, asking nothing of any other host. Screenshots in `test-artifacts/docs-site/`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Playwright, expect

from devkit.up import REPO, Running, is_ready, start_up, tls_context, wait_for
from tests.conftest import server_dir
from tests.e2e.browser import cut_off, launch_context

pytestmark = pytest.mark.timeout(240)
ARTIFACTS = REPO / "test-artifacts" / "docs-site"
#: What a checkout holds that `up` and the site's build read (linked, so the site is built from these files).
CHECKOUT = ("backend", "standins", "docs", "mkdocs.yml", "docs_hooks.py")
#: An element that loads something by its address: the only place a URL in the site may point elsewhere is a
#: plain link (`<a href>`) a reader chooses to follow.
LOADS = re.compile(
    r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=\"(https?:[^\"]*)\"|<link\b[^>]*\bhref=\"(https?:[^\"]*)\""
)


@pytest.fixture(scope="module")
def up() -> Iterator[tuple[Running, Path]]:
    """`voicegate up` started from a fresh checkout (no `build/`), once `/readyz` answers."""
    with server_dir("docs-site") as root:
        checkout = root / "checkout"
        checkout.mkdir()
        for name in CHECKOUT:
            (checkout / name).symlink_to(REPO / name)
        running = start_up(root, None, cwd=checkout)
        try:
            wait_for(lambda: is_ready(running.base_url), 120, "/readyz 200", running)
            yield running, checkout
        finally:
            running.process.terminate()
            running.process.wait(timeout=30)
            running.pg.stop(mode="immediate")


def test_up_builds_the_missing_site_and_serves_it(up: tuple[Running, Path]) -> None:
    running, checkout = up
    assert not (checkout / "build").exists()
    assert f"docs site: {running.base_url}/docs/" in running.log.read_text()
    first = httpx.get(f"{running.base_url}/docs/", timeout=10)
    # The first request starts the build and is told so in words, with a page that reloads itself.
    assert first.status_code == 503, first.text
    assert "being built" in first.text
    assert first.headers["retry-after"] == "2"
    started = time.monotonic()
    wait_for(
        lambda: httpx.get(f"{running.base_url}/docs/", timeout=10, verify=tls_context()).status_code == 200,
        120,
        "the site",
        running,
    )
    built_in = time.monotonic() - started
    site = checkout / "build" / "docs-site"
    assert (site / "index.html").is_file()
    assert (site / "api" / "openapi.json").is_file()
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 14
    loads = {url for page in pages for match in LOADS.findall(page.read_text()) for url in match if url}
    assert not loads, f"the site loads from elsewhere: {sorted(loads)}"
    assert not list(site.rglob("wordcut*")), "the theme's LGPL word breaker for Thai is left out (docs_hooks.py)"
    redirect = httpx.get(f"{running.base_url}/docs", timeout=10)
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "/docs/"
    assert httpx.get(f"{running.base_url}/docs/../mkdocs.yml", timeout=10).status_code == 404
    print(f"built and served in {built_in:.1f} s")


async def test_the_site_renders_searches_and_shows_the_reference_offline(
    up: tuple[Running, Path], playwright: Playwright
) -> None:
    running, _ = up
    wait_for(
        lambda: httpx.get(f"{running.base_url}/docs/", timeout=10, verify=tls_context()).status_code == 200,
        120,
        "the site",
        running,
    )
    context = await launch_context(playwright)
    try:
        offline = await cut_off(context, running)
        page = await context.new_page()
        await page.set_viewport_size({"width": 1280, "height": 900})  # wide: the navigation beside the page
        await page.goto(f"{running.base_url}/docs/")
        await expect(page).to_have_title(re.compile("voicegate"))
        await expect(page.get_by_role("heading", name="voicegate", level=1)).to_be_visible()
        await expect(
            page.get_by_role("navigation").get_by_role("link", name="Concepts and architecture")
        ).to_be_visible()
        # The theme's own style sheet applied (served by the app, not fetched from elsewhere).
        header = page.locator("header.md-header")
        await expect(header).to_be_visible()
        assert await header.evaluate("e => getComputedStyle(e).position") == "sticky"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "docs-home.png")

        # Search runs in the browser, from the site's own index and worker.
        await page.keyboard.press("s")  # the theme's shortcut to the search box
        await page.keyboard.type("idempotency")
        result = page.locator(".md-search-result__item").first
        await expect(result).to_be_visible(timeout=15_000)
        await page.screenshot(path=ARTIFACTS / "docs-search.png")

        await page.goto(f"{running.base_url}/docs/api/reference/")
        heading = page.get_by_role("heading", name="POST /api/v1/voice-samples", exact=False).first
        await expect(heading).to_be_visible()
        await page.screenshot(path=ARTIFACTS / "docs-reference.png")

        # A missing page is the site's own 404 page (360a82a answered it as problem+json), styled and working
        # from any depth: its addresses are the site's, under /docs/.
        missing = await page.goto(f"{running.base_url}/docs/no/such/page/")
        assert missing is not None
        assert missing.status == 404
        assert missing.headers["content-type"].startswith("text/html")
        await expect(page.get_by_role("heading", name="404 - Not found")).to_be_visible()
        assert await header.evaluate("e => getComputedStyle(e).position") == "sticky"
        await page.screenshot(path=ARTIFACTS / "docs-404.png")
        await page.get_by_role("navigation").get_by_role("link", name="Concepts and architecture").first.click()
        await expect(page).to_have_url(f"{running.base_url}/docs/concepts/")
        await page.screenshot(path=ARTIFACTS / "docs-after-404.png")
        assert offline.blocked == [], f"the site asked other hosts: {offline.blocked}"
    finally:
        assert context.browser is not None
        await context.browser.close()
