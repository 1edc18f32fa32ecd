"""Named crash points for the crash-safety tests: a worker (or the API, `after_upload_stored`) can be made to
die at an exact step.

`VOICEGATE_FAILPOINTS=after_claim,before_archive` makes the process SIGKILL itself the first time it
reaches one of those points. Unset (always, outside those tests) every call is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from typing import Final

POINTS: Final = frozenset(
    {
        "after_claim",
        "after_provider_create",
        "after_db_write",
        "before_archive",
        "after_upload_stored",
        "between_erasure_items",
    }
)
_ARMED: Final = frozenset(p.strip() for p in os.environ.get("VOICEGATE_FAILPOINTS", "").split(",") if p.strip())

if not _ARMED <= POINTS:
    raise ValueError(f"VOICEGATE_FAILPOINTS names unknown points: {', '.join(sorted(_ARMED - POINTS))}")


def failpoint(name: str) -> None:
    """Die here, with no cleanup at all, when `name` is armed (as a power cut or OOM kill would)."""
    if name not in POINTS:
        raise ValueError(f"unknown failpoint {name!r}")
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
