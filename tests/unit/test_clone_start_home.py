"""A clone is started in one place, `backend.clone.start.start_clone`: it alone makes an attempt (retries
copy one in SQL), so every route and operator path shares its rules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted(
    p for folder in ("backend", "standins", "queue_consumers", "scripts") for p in (ROOT / folder).rglob("*.py")
)
HOME = "backend/clone/start.py"


def attempt_makers(path: Path) -> list[int]:
    """The lines of `path` that call `backend.records.attempts.create`, under whatever name it is imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: set[str] = set()
    functions: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "backend.records":
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "attempts"}
        if isinstance(node, ast.ImportFrom) and node.module == "backend.records.attempts":
            functions |= {alias.asname or alias.name for alias in node.names if alias.name == "create"}
        if isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "backend.records.attempts"}
    lines: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in functions:
            lines.append(node.lineno)
        if isinstance(func, ast.Attribute) and func.attr == "create" and ast.unparse(func.value) in modules:
            lines.append(node.lineno)
    return lines


def test_only_start_clone_makes_an_attempt() -> None:
    makers = {str(p.relative_to(ROOT)): lines for p in CODE if (lines := attempt_makers(p))}
    assert list(makers) == [HOME], f"attempts made outside {HOME} (file: lines): {makers}"
    assert len(makers[HOME]) == 1
