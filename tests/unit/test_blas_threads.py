"""Every voicegate process runs NumPy's and SciPy's OpenBLAS on one thread (the `voicegate` package sets it
before either loads): a pool beside the CPU executor's thread only spins, which doubled a sample check's CPU and
kept a second worker process from adding more than 1.2x on 2 cores. Read off the threads a fresh interpreter
has once NumPy and SciPy are loaded and have multiplied a matrix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COUNT = """
import os, sys
{before}
import numpy, scipy.linalg
numpy.ones((256, 256)) @ numpy.ones((256, 256))
print(len(os.listdir("/proc/self/task")))
"""


def threads(before: str) -> int:
    env = {key: value for key, value in os.environ.items() if key not in {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}}
    script = COUNT.format(before=before)
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, check=True)
    return int(done.stdout)


def test_voicegate_loads_blas_with_one_thread_where_numpy_alone_would_start_a_pool() -> None:
    assert os.cpu_count() is not None
    assert os.cpu_count() > 1, "on one core OpenBLAS starts no pool, and there is nothing to tell apart"  # type: ignore[operator]
    assert threads("") > 1
    assert threads("import voicegate") == 1


def test_an_operators_own_setting_is_kept() -> None:
    script = "import os, voicegate; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, check=True, text=True)
    assert done.stdout.strip() == "2"
