"""axe-core in the page under test, for the browser tests: each state of the page is checked at a phone's and
a desktop's width (0 violations asked) and photographed at both into `test-artifacts/page-states/`.

axe is vendored in `tests/e2e/vendor/axe-core/` (see its README): the tests load it, the page never does.
It goes in through `evaluate`, which runs over CDP, so the page's CSP (script-src 'self') stays as served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
STATES = Path(__file__).resolve().parents[2] / "test-artifacts" / "page-states"
#: The two widths every state is checked and photographed at: a small phone's and a laptop's.
WIDTHS = {375: 800, 1280: 900}
#: What axe is asked to report: every violation, of every impact, of the WCAG 2.x A/AA rules and best practices.
RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
  }));
}"""
#: Resolves once the page has painted twice more (a screenshot right after a resize may catch it half painted), or
#: after a second: a renderer that stopped painting (seen once in a clean clone's run) left the evaluate waiting out
#: the test's 240 s; the screenshot that follows forces a frame.
PAINTED = """() => new Promise((done) => {
    setTimeout(done, 1000);
    requestAnimationFrame(() => requestAnimationFrame(done));
})"""


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on `page` as it is now (axe injected once per document)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = await page.evaluate(RUN)
    return violations


async def check_state(page: Page, name: str) -> None:
    """Photograph the page's state `name` at both widths and assert axe finds nothing wrong at either."""
    STATES.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    found: dict[int, list[dict[str, Any]]] = {}
    for width, height in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.evaluate(PAINTED)
        await page.screenshot(path=STATES / f"{name}-{width}.png", full_page=True)
        found[width] = await axe_violations(page)
    if size is not None:
        await page.set_viewport_size(size)
    assert found == {width: [] for width in WIDTHS}, f"axe-core violations in state {name!r}: {found}"
