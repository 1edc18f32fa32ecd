"""The demo page waits out a 503 or 429 with jitter on every pause, the first included (issue 45): pages held
back by one outage must not all come back at the instant its Retry-After names. `pauseSeconds` is run by
Node, as the browser runs the page's module."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

API_JS = Path(__file__).resolve().parents[2] / "backend" / "http" / "static" / "api.js"


def pauses(retry_after: float | None, repeat: int, randoms: list[float]) -> list[float]:
    """`pauseSeconds(retry_after, repeat, random)` for each value `random()` returns."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (the machine's Node.js runs the page's module here)")
    script = (
        f"const {{ pauseSeconds }} = await import({json.dumps(API_JS.as_uri())});"
        f"console.log(JSON.stringify({json.dumps(randoms)}.map((r) =>"
        f" pauseSeconds({json.dumps(retry_after)}, {repeat}, () => r))));"
    )
    ran = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, timeout=60, check=True)
    return [float(value) for value in json.loads(ran.stdout)]


@pytest.mark.parametrize("repeat", [0, 1, 3])
def test_every_pause_waits_at_least_what_was_asked_and_spreads_the_pages(repeat: int) -> None:
    spread = pauses(2, repeat, [0.0, 0.5, 0.99])
    assert spread[0] >= 2.0, "never sooner than Retry-After asks"
    assert spread[0] < spread[1] < spread[2], f"pause {repeat}: {spread} does not spread pages apart"
    assert spread[2] <= 10.0, "no pause longer than PATIENCE.maxPause"
