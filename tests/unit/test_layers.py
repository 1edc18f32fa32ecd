"""Imports go one way: every module of `backend/`, `queue_consumers/` and `scripts/` stands on a layer, and
none imports a module of a higher layer; no two top-level packages import each other; and the web
framework stays at the edge: in `backend/`, only `backend/http/` and the entry points import Litestar.

Read from the source (the AST), every import counted wherever it stands (in a function, under
TYPE_CHECKING): a lazy import is still a dependency. What is still crooked today is listed below with why,
and the lists only shrink: a listed import or circle that is gone fails the test until its line goes too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("backend", "queue_consumers", "scripts")

#: From the top down; a module takes the layer of its longest listed prefix. A module may import its own
#: layer and those below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("entry points", ("backend.cli", "backend.app", "queue_consumers", "scripts")),
    ("composition", ("backend.compose", "backend.http.storage_in_process")),
    ("http", ("backend.http",)),
    (
        "use cases",
        (
            "backend.attempts",
            "backend.clone",
            "backend.consents",
            "backend.reflections",
            "backend.samples",
            "backend.speech",
            "backend.synthesis",
            "backend.voices",
            "backend.webhooks",
            "backend.storage.orphans",
            "backend.embedded.storage.service",
            "backend.embedded.storage.orphans",
        ),
    ),
    ("lifecycle context", ("backend.context",)),
    (
        "records and adapters",
        (
            "backend.audio",
            "backend.auth",
            "backend.consents.phrase",
            "backend.embedded",
            "backend.leases",
            "backend.provenance",
            "backend.providers",
            "backend.queues",
            "backend.records",
            "backend.runtime",
            "backend.settings",
            "backend.standard_webhooks",
            "backend.storage",
            "backend.voiceprint",
        ),
    ),
    ("database", ("backend.db",)),
    (
        "leaf utilities",
        (
            "backend",
            "backend.cpu",
            "backend.errors",
            "backend.failpoints",
            "backend.fields",
            "backend.json_body",
            "backend.multipart",
            "backend.outages",
            "backend.secret",
            "backend.text",
            "backend.tls",
        ),
    ),
)

#: The only modules of `backend/` (with what is under them) that may import Litestar: the HTTP layer and the
#: entry points that build and serve the app. Everything below speaks msgspec Structs and our errors.
LITESTAR_IMPORTERS = ("backend.http", "backend.app", "backend.cli")

#: Imports from a lower layer up, still there while other steps of issue 29 remove them.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}

#: Top-level packages that import each other, still there while other steps of issue 29 untie them.
KNOWN_CIRCLES: dict[frozenset[str], str] = {}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _known(name: str) -> str | None:
    """The module of ours that `name` (a module, or a name inside one) is, if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, path: Path) -> Iterator[str]:
    """Every name `module` imports, absolute (`package.module` or `package.module.name`), ours or not."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from package import module` imports the module; `from module import name`, the module.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from targets


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module of ours that `module` imports."""
    for target in _targets(module, path):
        known = _known(target)
        if known is not None and known != module:
            yield known


IMPORTS = {(module, target) for module, path in MODULES.items() for target in _imported(module, path)}


def _layer(module: str) -> int | None:
    """The index of `module`'s layer in LAYERS (0 at the top), by its longest listed prefix."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def _top(module: str) -> str:
    """The top-level package (or module) of `module`: `backend.voices` for `backend.voices.service`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "backend" and len(parts) > 1 else parts[0]


def test_every_module_stands_on_a_layer() -> None:
    assert MODULES, "no module was read"
    unplaced = sorted(module for module in MODULES if _layer(module) is None)
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


def test_no_import_runs_from_a_lower_layer_up() -> None:
    upward = {
        (module, target)
        for module, target in IMPORTS
        if (low := _layer(module)) is not None and (high := _layer(target)) is not None and low > high
    }
    new = sorted(upward - KNOWN_UPWARD.keys())
    gone = sorted(KNOWN_UPWARD.keys() - upward)
    assert not new, "these imports run from a lower layer up: " + "; ".join(
        f"{module} ({LAYERS[_layer(module) or 0][0]}) imports {target} ({LAYERS[_layer(target) or 0][0]})"
        for module, target in new
    )
    assert not gone, f"these known upward imports are gone: strike them from KNOWN_UPWARD: {gone}"


def test_no_two_top_level_packages_import_each_other() -> None:
    edges = {(_top(module), _top(target)) for module, target in IMPORTS} - {(t, t) for t in map(_top, MODULES)}
    circles = {frozenset((first, second)) for first, second in edges if (second, first) in edges}
    new = sorted(map(sorted, circles - KNOWN_CIRCLES.keys()))
    gone = sorted(map(sorted, KNOWN_CIRCLES.keys() - circles))
    assert not new, "these top-level packages import each other: " + "; ".join(
        " <-> ".join(pair) + " (" + ", ".join(_ties(*pair)) + ")" for pair in new
    )
    assert not gone, f"these known circles are untied: strike them from KNOWN_CIRCLES: {gone}"


def _ties(first: str, second: str) -> list[str]:
    """The imports that tie two top-level packages, both ways."""
    return sorted(
        f"{module} -> {target}" for module, target in IMPORTS if {_top(module), _top(target)} == {first, second}
    )


def test_only_the_http_layer_and_the_entry_points_import_litestar() -> None:
    importers = sorted(
        module
        for module, path in MODULES.items()
        if module.split(".")[0] == "backend"
        and not any(module == allowed or module.startswith(allowed + ".") for allowed in LITESTAR_IMPORTERS)
        and any(target == "litestar" or target.startswith("litestar.") for target in _targets(module, path))
    )
    assert not importers, f"only backend/http/ and the entry points may import litestar; these do too: {importers}"


def test_records_stand_on_the_database_alone() -> None:
    """A typed row needs only the db layer and leaf utilities, not the adapters beside it in its layer."""
    floor = next(index for index, (name, _) in enumerate(LAYERS) if name == "database")
    reaching = sorted(
        f"{module} -> {target}"
        for module, target in IMPORTS
        if _top(module) == "backend.records" and _top(target) != "backend.records" and (_layer(target) or 0) < floor
    )
    assert not reaching, f"records import only backend.db and leaf utilities: {reaching}"
