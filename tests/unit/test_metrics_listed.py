"""Every metric voicegate registers is listed, with its kind, in docs/operations.md's Metrics table, and the
table lists nothing that is not served."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

# Imported for the metrics they register, as the processes that serve /metrics import them.
import backend.http.pipeline.metrics
import backend.http.pipeline.server
import backend.providers.slots  # noqa: F401
import queue_consumers.storage_wait  # noqa: F401

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def served() -> dict[str, str]:
    """voicegate's metric families as `/metrics` names them (a counter with `_total`), with their kind."""
    found = {}
    for family in REGISTRY.collect():
        if family.name.startswith("voicegate_"):
            name = f"{family.name}_total" if family.type == "counter" else family.name
            found[name] = family.type
    return found


def listed() -> dict[str, str]:
    section = DOCS.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(voicegate_[a-z_]+)` \| (\w+) \|", section, re.M))


def test_the_docs_list_every_metric_served_with_its_kind() -> None:
    assert served(), "no voicegate metric registered"
    assert listed() == served()
