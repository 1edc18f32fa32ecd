"""The named-query files: parsed once; each belongs to the module beside it, which uses every query it
holds and no other module's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from backend.db.queries import QueryFileError, load_queries, parse_queries

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted(
    p for folder in ("backend", "standins", "queue_consumers", "scripts") for p in (ROOT / folder).rglob("*.py")
)
QUERY_NAMES = {"Q", "_Q"}


def test_blocks_are_split_on_their_headers() -> None:
    text = "-- leading comment\n-- name: first\nselect 1;\n\n-- name: second_one\nselect %(x)s;\n"
    assert parse_queries(text) == {"first": "select 1;", "second_one": "select %(x)s;"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("select 1;\n-- name: q\nselect 2;", "before the first"),
        ("-- name: q\n\n-- name: r\nselect 1;", "'q' is empty"),
        ("-- name: q\nselect 1;\n-- name: q\nselect 2;", "defined twice"),
    ],
)
def test_malformed_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(QueryFileError, match=message):
        parse_queries(text)


def _used_names(tree: ast.AST) -> set[str]:
    """Names a module looks up in its own `_Q` with a constant key."""
    return {
        node.slice.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in QUERY_NAMES
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    }


def _computed_lookups(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id in QUERY_NAMES
        and not isinstance(node.slice, ast.Constant)
        for node in ast.walk(tree)
    )


@pytest.mark.parametrize(
    "path", [p for p in CODE if p.with_suffix(".sql").exists()], ids=lambda p: str(p.relative_to(ROOT))
)
def test_a_module_uses_exactly_the_queries_of_its_own_file(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = set(load_queries(path.with_suffix(".sql")))
    used = _used_names(tree)
    assert used <= defined, f"{path.name} asks for queries its .sql file lacks: {sorted(used - defined)}"
    if not _computed_lookups(tree):
        assert defined <= used, f"{path.with_suffix('.sql').name} holds queries nothing uses: {sorted(defined - used)}"


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reads_another_modules_queries(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in QUERY_NAMES, f"{path.name}:{node.lineno} reads another module's named queries"
        if isinstance(node, ast.ImportFrom):
            imported = {alias.name for alias in node.names}
            assert not imported & QUERY_NAMES, f"{path.name}:{node.lineno} imports another module's named queries"


def test_every_query_file_belongs_to_a_module() -> None:
    files = [
        p for folder in ("backend", "standins", "queue_consumers", "scripts") for p in (ROOT / folder).rglob("*.sql")
    ]
    assert files
    assert [str(p.relative_to(ROOT)) for p in files if not p.with_suffix(".py").exists()] == []
