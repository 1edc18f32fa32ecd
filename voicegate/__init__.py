"""The `voicegate` program: its commands (`voicegate.cli`) stand on everything else, the queue consumers and
the operator scripts included, and nothing imports them.

Importing it sets one thread for the BLAS libraries NumPy and SciPy bundle (OpenBLAS), before either loads,
unless the environment says otherwise. Every piece of CPU work runs on one thread of the process's fair executor
(`backend.cpu`); an OpenBLAS pool beside it only spins, burning the CPU a second worker process would use
(bench/sample_checks.py measures it).
"""

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
