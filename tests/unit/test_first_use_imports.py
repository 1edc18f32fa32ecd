"""The consumers import, as they start, what a synthesis job's CPU work would otherwise import on a niced thread
(`backend.compose.consumers.FIRST_USE_IMPORTS`): after that, marking a render imports nothing.

Each case runs in a fresh interpreter: this one has imported most of scipy already."""

from __future__ import annotations

import json
import subprocess
import sys

from devkit.up import REPO

# A render as the synthesis step marks it (`marked_wav`), at a rate the watermark resamples from. Prints the modules
# the mark imported, after the consumers' first-use imports when asked to.
_RENDER = """
import json, sys
import numpy as np
from backend.audio.render import marked_wav
from backend.compose.consumers import import_first_use
from backend.synthesis import step
from backend.wav import float_to_wav

if sys.argv[1] == "warm":
    import_first_use().join()
t = np.arange(24000) / 24000
wav = float_to_wav(0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)), 24000)
before = set(sys.modules)
marked_wav([wav])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _imported_by_the_mark(mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _RENDER, mode], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    imported: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return imported


def test_a_render_marked_after_the_first_use_imports_imports_nothing() -> None:
    assert _imported_by_the_mark("warm") == []


def test_a_render_marked_in_a_process_that_did_not_make_them_imports_scipy_signal() -> None:
    # What the first test guards against: without them, the mark itself imports scipy.signal.
    assert "scipy.signal" in _imported_by_the_mark("cold")
