"""The product's words say what is true now: no issue or stop number, no design document outside the project,
no benchmark's speed-up, and module docstrings that fit on a screen.

History (issue numbers, figures measured before and after, approaches replaced) belongs in CHANGELOG.md and
the commit messages; the architecture in docs/concepts.md. Product code is `voicegate/`, `backend/`,
`queue_consumers/` and `scripts/`: its Python, its SQL, and the page's scripts, markup and styles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("voicegate", "backend", "queue_consumers", "scripts")
SUFFIXES = {".py", ".sql", ".js", ".html", ".css"}
#: A module docstring longer than this is an essay: what the module is for fits on a screen.
MAX_MODULE_DOCSTRING_LINES = 30
#: What a product file must not say: each pattern with why.
FORBIDDEN = (
    (re.compile(r"\b[Ii]ssues? #?\d+"), "an issue number (history: CHANGELOG.md)"),
    (re.compile(r"\b[Ss]top \d+\b"), "a stop number (history: CHANGELOG.md)"),
    (re.compile(r"DESIGN\.md"), "a design document outside the project (cite docs/)"),
    (re.compile(r"\.\./shared|/work/shared|shared/reference|\breference §"), "a file outside the project"),
    (re.compile(r"\btook \d"), "a measured time (CHANGELOG.md)"),
    (re.compile(r"\b\d+(?:\.\d+)? ?[x\u00d7] (?:faster|slower|as fast|as long)\b"), "a speed-up (CHANGELOG.md)"),
)


def product_files() -> list[Path]:
    return sorted(
        path
        for folder in PRODUCT
        for path in (ROOT / folder).rglob("*")
        if path.suffix in SUFFIXES and path.is_file() and "__pycache__" not in path.parts
    )


def forbidden_words(text: str) -> list[tuple[int, str, str]]:
    """Each line of ``text`` that says what a product file must not: (line number, the words, why)."""
    return [
        (number, match[0], why)
        for number, line in enumerate(text.splitlines(), start=1)
        for pattern, why in FORBIDDEN
        if (match := pattern.search(line))
    ]


def module_docstring_lines(source: str) -> int:
    """How many lines the module docstring of Python ``source`` spans (0 without one)."""
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    return len(docstring.strip("\n").splitlines()) if docstring else 0


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_checks_find_what_they_look_for() -> None:
    assert [why for _, _, why in forbidden_words("x = 1  # fixed in issue 48\n")] == [FORBIDDEN[0][1]]
    assert forbidden_words("-- stop 3: the lease moved\n")
    assert forbidden_words('"""The queues (DESIGN.md §4)."""')
    assert forbidden_words("// see ../shared/reference/supabase.md")
    assert forbidden_words("# a sample check took 3.2 s")
    assert forbidden_words("# 8x faster than before")
    assert not forbidden_words("# a lease of 60 s, extended every 20 s; 4x oversampled (ITU-R BS.1770)")
    assert module_docstring_lines('"""One line."""\n') == 1
    assert module_docstring_lines('"""' + "line\n" * 40 + '"""\n') == 40
    assert module_docstring_lines("x = 1\n") == 0


def test_product_files_cite_no_history_and_no_outside_document() -> None:
    found = [
        f"{relative(path)}:{number}: {words!r}: {why}"
        for path in product_files()
        for number, words, why in forbidden_words(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "\n".join(found)


def test_module_docstrings_fit_on_a_screen() -> None:
    long = [
        f"{relative(path)}: {lines} lines"
        for path in product_files()
        if path.suffix == ".py"
        if (lines := module_docstring_lines(path.read_text(encoding="utf-8"))) > MAX_MODULE_DOCSTRING_LINES
    ]
    assert long == [], f"module docstrings over {MAX_MODULE_DOCSTRING_LINES} lines (move the essay to docs/):\n" + (
        "\n".join(long)
    )
