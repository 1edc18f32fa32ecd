"""Every dotted name of ours that the prose writes in backticks (`backend.voices.service.VoicesService`), in a
docstring of a shipped module or in the docs, names something that is there: a module, or a name inside one that
`getattr` finds (or a class's annotated field). A module that moved leaves no reader at a dead address."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The shipped packages whose docstrings are read, and the prose beside them.
PACKAGES = ("backend", "standins", "queue_consumers", "scripts", "voicegate")
DOCS = (*sorted((ROOT / "docs").rglob("*.md")), ROOT / "CONTRIBUTING.md", ROOT / "README.md")
#: A backticked dotted name of ours: `backend.x.y` (or `standins.x`), perhaps called (`backend.x.y()`). (`voicegate.x`
#: in the prose is the database schema's, not the package's.)
DOTTED = re.compile(r"`((?:backend|standins|queue_consumers)(?:\.\w+)+)(?:\(\))?`")


def _docstrings(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node, clean=False)
            if text:
                yield text


def _written() -> dict[str, set[str]]:
    """Each dotted name written in backticks, with where."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for text in _docstrings(path):
                for name in DOTTED.findall(text):
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for path in DOCS:
        if path.exists():
            for name in DOTTED.findall(path.read_text()):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


WRITTEN = _written()


def resolves(name: str) -> bool:
    """Whether `name` is a module of ours, or a name a module of ours holds (a class's field included)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            held: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            if hasattr(held, part):
                held = getattr(held, part)
            elif isinstance(held, type) and any(part in getattr(k, "__annotations__", {}) for k in held.__mro__):
                held = None
            else:
                return False
        return True
    return False


def test_the_finder_reads_a_dotted_name_and_refuses_a_dead_one() -> None:
    assert DOTTED.findall("the service (`backend.voices.service.VoicesService`) and `backend.db.units.Database()`") == [
        "backend.voices.service.VoicesService",
        "backend.db.units.Database",
    ]
    assert resolves("backend.samples.upload")
    assert resolves("backend.policy.consent.check_recordable")
    assert not resolves("backend.rules.sample_upload")
    assert not resolves("backend.samples.upload.NoSuchThing")


def test_some_dotted_names_are_written() -> None:
    assert len(WRITTEN) > 20, WRITTEN


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_a_dotted_name_in_the_prose_resolves(name: str) -> None:
    assert resolves(name), f"`{name}` names nothing (written in {', '.join(sorted(WRITTEN[name]))})"
