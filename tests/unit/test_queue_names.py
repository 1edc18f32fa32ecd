"""Queue names are spelled in one Python module, `backend.queues`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from backend import queues

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted(
    p for folder in ("backend", "standins", "queue_consumers", "scripts") for p in (ROOT / folder).rglob("*.py")
)


@pytest.mark.parametrize("path", [p for p in CODE if p != ROOT / "backend" / "queues.py"], ids=lambda p: p.name)
def test_no_other_module_spells_a_queue_name(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Docstrings may name a queue in prose; code must take the name from `backend.queues`.
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }
    spelled = {name for name in queues.ALL for literal in literals if name in literal}
    assert spelled == set(), f"{path.relative_to(ROOT)} spells {sorted(spelled)}; use backend.queues"
