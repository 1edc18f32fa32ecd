"""What a process start imports: the server's code loads without scipy.signal, whose import (scipy.stats,
interpolate and optimize with it) costs over a second of CPU; the audio code imports it when it first filters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = (
    "import sys\n"
    "{imports}\n"
    "print(sorted(name for name in sys.modules if name.startswith(('scipy.signal', 'scipy.stats', 'pyloudnorm'))))\n"
)


def _heavy_modules_after(imports: str) -> str:
    probe = [sys.executable, "-c", _PROBE.format(imports=imports)]
    return subprocess.check_output(probe, text=True, timeout=120, cwd=ROOT).strip()


def test_the_server_and_worker_code_loads_without_scipy_signal() -> None:
    # What `voicegate up` loads before it serves (`_load_server_code`), and the worker's process.
    assert _heavy_modules_after("import backend.app, queue_consumers.worker, voicegate.cli") == "[]"


def test_filtering_audio_loads_scipy_signal_when_first_needed() -> None:
    # The probe above is honest only if these modules do load it once audio is filtered.
    loaded = _heavy_modules_after(
        "import numpy as np\n"
        "from backend.audio import measure\n"
        "measure.resample(np.zeros(4800, dtype=np.float32), 48000, 16000)"
    )

    assert "'scipy.signal'" in loaded
