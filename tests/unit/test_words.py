"""The project's words say what is true now: no issue or stop number, no design document or file outside the
project, no benchmark's speed-up in product code, and module docstrings that fit on a screen.

History (issue numbers, figures measured before and after, approaches replaced) belongs in CHANGELOG.md and
the commit messages; the architecture in docs/concepts.md. Product code is `voicegate/`, `backend/`,
`queue_consumers/` and `scripts/`: its Python, its SQL, and the page's scripts, markup and styles. The
development files, the documentation site's pages (`docs/`), the benchmarks (`bench/`), the development aids
(`devkit/`) and the provider fakes (`fakes/`), are held to the same history and outside-file rules, not to the
figures' rules: the benchmarks and their page are where the latest figures live.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("voicegate", "backend", "standins", "queue_consumers", "scripts")
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
#: What no development file may say either: the history and outside-file patterns of ``FORBIDDEN``.
HISTORY = FORBIDDEN[:4]
OUTSIDE = FORBIDDEN[3][1]
#: An issue or stop number a line break parts from its word ("Target (issue" ending a line, "58)" the next).
SPLIT_NUMBER = re.compile(r"\b(?:[Ii]ssues?|[Ss]top)[ \t]*\n[ \t]*(?:#:?|//|--|\*)?[ \t]*#?\d+")
SPLIT_WHY = "an issue or stop number across a line break (history: CHANGELOG.md)"
#: The development files: each folder with the suffixes held.
DEVELOPMENT = {"docs": {".md"}, "bench": {".py"}, "devkit": {".py"}, "fakes": {".py"}}
#: Lines of development files that may name a path outside the project, each with why. The clips' folder on the
#: development machine is a default value where VOICEGATE_SPEECH_CLIPS is not set, not a citation: it is said once,
#: here, and the benchmarks import it.
OUTSIDE_DEFAULTS = {
    "devkit/clips.py": (
        'LIBRISPEECH = Path(os.environ.get("VOICEGATE_SPEECH_CLIPS", "/work/shared/speech/librispeech"))'
    ),
}


def product_files() -> list[Path]:
    return sorted(
        path
        for folder in PRODUCT
        for path in (ROOT / folder).rglob("*")
        if path.suffix in SUFFIXES and path.is_file() and "__pycache__" not in path.parts
    )


def development_files() -> list[Path]:
    return sorted(
        path
        for folder, suffixes in DEVELOPMENT.items()
        for path in (ROOT / folder).rglob("*")
        if path.suffix in suffixes and path.is_file() and "__pycache__" not in path.parts
    )


def forbidden_words(
    text: str, patterns: tuple[tuple[re.Pattern[str], str], ...] = FORBIDDEN
) -> list[tuple[int, str, str]]:
    """Each line of ``text`` that says what a product file must not (or what ``patterns`` name): (line number,
    the words, why)."""
    return [
        (number, match[0], why)
        for number, line in enumerate(text.splitlines(), start=1)
        for pattern, why in patterns
        if (match := pattern.search(line))
    ]


def split_numbers(text: str) -> list[tuple[int, str, str]]:
    """Each issue or stop number in ``text`` that a line break parts from its word: (line number of the word, the
    words, why)."""
    return [
        (text.count("\n", 0, match.start()) + 1, " ".join(match[0].split()), SPLIT_WHY)
        for match in SPLIT_NUMBER.finditer(text)
    ]


def history_words(path: Path, text: str) -> list[tuple[int, str, str]]:
    """What development file ``path`` (its text ``text``) says that it must not: the history and outside-file
    patterns on each line, a number parted from its word, and no line of ``OUTSIDE_DEFAULTS`` counted."""
    allowed = OUTSIDE_DEFAULTS.get(relative(path))
    lines = text.splitlines()
    return sorted(
        (number, words, why)
        for number, words, why in forbidden_words(text, HISTORY) + split_numbers(text)
        if not (why == OUTSIDE and lines[number - 1].strip() == allowed)
    )


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
    assert split_numbers("Target (issue\n  58): the ready state") == [(1, "issue 58", SPLIT_WHY)]
    assert split_numbers("x = 1  # fixed in issue\n# 48\n")
    assert not split_numbers("the issue's figures\n2026-11-26: 1.10 flows/s")
    assert [why for _, _, why in forbidden_words("# 8x faster, in issue 56", HISTORY)] == [FORBIDDEN[0][1]]
    default = ROOT / "devkit" / "clips.py"
    assert not history_words(default, OUTSIDE_DEFAULTS["devkit/clips.py"] + "\n")
    assert history_words(default, "# the clips in /work/shared/speech\n")
    assert history_words(ROOT / "bench" / "x.py", OUTSIDE_DEFAULTS["devkit/clips.py"] + "\n")


def test_product_files_cite_no_history_and_no_outside_document() -> None:
    found = [
        f"{relative(path)}:{number}: {words!r}: {why}"
        for path in product_files()
        for number, words, why in forbidden_words(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "\n".join(found)


def test_development_files_cite_no_history_and_no_outside_document() -> None:
    files = development_files()
    assert {relative(path).split("/")[0] for path in files} == DEVELOPMENT.keys()
    found = [
        f"{relative(path)}:{number}: {words!r}: {why}"
        for path in files
        for number, words, why in history_words(path, path.read_text(encoding="utf-8"))
    ]
    assert found == [], "\n".join(found)


def test_no_number_is_parted_from_its_issue_or_stop() -> None:
    found = [
        f"{relative(path)}:{number}: {words!r}: {why}"
        for path in product_files()
        for number, words, why in split_numbers(path.read_text(encoding="utf-8"))
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
