"""Imports go one way: every module of `voicegate/` (the program), `backend/`, `queue_consumers/`, `scripts/`, `bench/`,
`tools/`, `devkit/` and `fakes/` stands on a layer, and none imports a module of a higher layer. The use-case areas
(`devkit.layers.AREAS`) stand on one layer, and one uses another only through that one's public face (its package's
`__init__`, or its `api` module), in one direction: the areas' graph has no circle, stands on at most three floors, and
is drawn in docs/concepts.md as the code has it. What more than one area asks is policy (`backend.policy`), below them
all: pure, it reads nothing, takes no worker context and answers no route. Modules import each other in no circle of any
length, nor do the top-level packages. The top-level folders stand one way too: `voicegate/` on `queue_consumers/`,
`scripts/` and `standins/`, and those on `backend/`, which imports none of them; no product module imports `tests/`,
`bench/`, the development aids beside them (`devkit/`, `fakes/`) or a package only the benchmarks run, nor runs a module
of the tests, the benchmarks or `devkit/` as a program (`python -m tests...`). SQL runs only in the data layers (the use
cases, the records and adapters, the database layer), never in the HTTP layer, the composition or an entry point. And
the web framework stays at the edge: in `backend/`, only `backend/http/`, the app and the Storage stand-in's routes and
what mounts them import Litestar.

Read from the source (the AST), every import counted wherever it stands (in a function, under
TYPE_CHECKING): a lazy import is still a dependency. What is still crooked today is listed below with why,
and the lists only shrink: a listed import or circle that is gone fails the test until its line goes too.
"""

from __future__ import annotations

import ast
import itertools
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from devkit.layers import AREAS, DEV_AIDS, FACES, LAYERS, STAND_IN_ROUTES, layer_of

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("voicegate", "backend", "standins", "queue_consumers", "scripts", "bench", "tools", "devkit", "fakes")
#: What ships: nothing of it may import the tests, the benchmarks or the development aids.
PRODUCT = ("voicegate", "backend", "standins", "queue_consumers", "scripts")
#: What no product module may run as a program either (`python -m tests.fakes` from a module that ships fails
#: where voicegate is installed). The provider fakes are the one development aid a product module runs:
#: `voicegate up --fake-providers` starts `python -m fakes all`, and says so where there are none.
NOT_RUN = ("tests", "bench", "devkit")
#: Packages of the dev lock that only the benchmarks run (procrastinate: the peer's empty job of
#: bench/lifecycle.py): a shipped module importing one would fail where `make up` installed voicegate.
BENCHMARK_ONLY = ("procrastinate",)

#: The only modules of `backend/` (with what is under them) that may import Litestar: the HTTP layer and the
#: entry points that build and serve the app. Everything below speaks msgspec Structs and our errors.
LITESTAR_IMPORTERS = (
    "backend.http",
    "backend.app",
    # The API process, built for its app (the stand-in it serves in embedded mode is reached through the app), and
    # what embedded mode adds to that app (types only: the routes and the client the program hands in).
    "backend.compose.api",
    "backend.compose.embedded",
    # The Storage stand-in's `/storage/v1` routes (a Litestar router), and what mounts them: in the API, or in
    # a Litestar app of their own that an operator script reaches in-process.
    *STAND_IN_ROUTES,
    "standins.storage.in_process",
    # Its own server (`voicegate storage`), and embedded mode's stand-ins as the program hands them to the app.
    "standins.storage.server",
    "standins.in_app",
)

#: Imports from a lower layer up still tolerated, each with why: none; the list only shrinks.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}

#: Circles of modules or of top-level packages still tolerated, each with why: none; the list only shrinks.
KNOWN_CIRCLES: dict[frozenset[str], str] = {}

#: Product modules that import the tests or the benchmarks, still tolerated: none; the list only shrinks.
KNOWN_TEST_IMPORTS: dict[tuple[str, str], str] = {}

#: Modules of `backend/` that import a folder above it (`queue_consumers/`, `scripts/`, `standins/`, `voicegate/`),
#: still tolerated: none; the list only shrinks.
KNOWN_FOLDER_UPWARD: dict[tuple[str, str], str] = {}

#: Modules above the data layers that run SQL, still tolerated: none; the list only shrinks.
KNOWN_SQL: dict[str, str] = {}

#: What may name a pool: the database layer, and the composition, which opens each pool behind its `Database`.
POOL_HOLDERS = ("backend.db", "backend.compose", "standins.storage.in_process")
#: What makes or types a pool (`backend.db.pool`; its `PoolLimits` are settings, not a pool).
_POOL_NAMES = frozenset({"backend.db.pool.Pool", "backend.db.pool.create_pool", "backend.db.pool.create_worker_pool"})

#: The layers SQL may run in: the use cases and everything below them but the leaf utilities.
DATA_LAYERS = ("use case", "worker context", "records and adapters", "database")
#: What runs SQL: a module's named queries (`load_queries`), or a call of the driver or of `backend.db.execute`.
_SQL_CALLS = frozenset({"load_queries", "execute", "executemany", "fetch_one", "fetch_optional", "fetch_all"})


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


def _top(module: str) -> str:
    """The top-level package (or module) of `module`: `backend.voices` for `backend.voices.service`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "backend" and len(parts) > 1 else parts[0]


def test_every_module_stands_on_alayer_of() -> None:
    assert MODULES, "no module was read"
    unplaced = sorted(module for module in MODULES if layer_of(module) is None)
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


def test_no_import_runs_from_a_lower_layer_up() -> None:
    upward = {
        (module, target)
        for module, target in IMPORTS
        if (low := layer_of(module)) is not None and (high := layer_of(target)) is not None and low > high
    }
    new = sorted(upward - KNOWN_UPWARD.keys())
    gone = sorted(KNOWN_UPWARD.keys() - upward)
    assert not new, "these imports run from a lower layer up: " + "; ".join(
        f"{module} ({LAYERS[layer_of(module) or 0][0]}) imports {target} ({LAYERS[layer_of(target) or 0][0]})"
        for module, target in new
    )
    assert not gone, f"these known upward imports are gone: strike them from KNOWN_UPWARD: {gone}"


def area_of(module: str) -> str | None:
    """The use-case area `module` belongs to, if any."""
    return next((area for area in AREAS if module == area or module.startswith(area + ".")), None)


def test_the_area_of_a_module_is_its_package() -> None:
    assert area_of("backend.clone.step") == "backend.clone"
    assert area_of("backend.clone") == "backend.clone"
    assert area_of("backend.cloned.step") is None
    assert area_of("backend.policy.consent") is None


def _face_of(module: str) -> bool:
    """Whether `module` is an area's public face: the area's package itself, or its `api` module."""
    return any(module == area + face for area in AREAS for face in FACES)


def area_graph(imports: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The areas' graph: (A, B) where a module of area A imports a module of area B."""
    return {
        (source, target)
        for module, imported in imports
        if (source := area_of(module)) is not None and (target := area_of(imported)) not in {None, source}
    }


def area_faults(imports: set[tuple[str, str]]) -> list[str]:
    """What breaks the areas' rule in `imports`: an import of a neighbour behind its face, and every circle of
    areas (of any length)."""
    behind = [
        f"{module} imports {target}, behind {area_of(target)}'s face"
        for module, target in sorted(imports)
        if (area := area_of(module)) is not None and area_of(target) not in {None, area} and not _face_of(target)
    ]
    circles = [" -> ".join(sorted(circle)) for circle in sorted(map(sorted, _circles(area_graph(imports))))]
    return behind + [f"these areas import each other in a circle: {circle}" for circle in circles]


def area_floors(edges: set[tuple[str, str]]) -> dict[str, int]:
    """Each area's floor in an acyclic graph: 1 for one that uses no other, else one above the highest it uses."""
    floors: dict[str, int] = {}

    def floor(area: str) -> int:
        if area not in floors:
            floors[area] = 1 + max((floor(target) for source, target in edges if source == area), default=0)
        return floors[area]

    for area in AREAS:
        floor(area)
    return floors


def test_an_area_uses_another_through_its_face_one_way() -> None:
    """An area that needs what another has imports that one's face, and no two areas lean on each other."""
    faults = area_faults(IMPORTS)
    assert not faults, "the areas' rule is broken: " + "; ".join(faults)


def test_the_areas_rule_fails_on_a_circle_made_on_purpose() -> None:
    """The checker itself, on graphs made up for it: a circle through the faces, of two areas or of three, is
    refused; a reach behind a face is refused; a chain through the faces passes."""
    chain = {("backend.clone.start", "backend.samples"), ("backend.voices.service", "backend.clone")}
    assert area_faults(chain) == []
    pair = chain | {("backend.samples.upload", "backend.clone")}
    assert area_faults(pair) == ["these areas import each other in a circle: backend.clone -> backend.samples"]
    three = chain | {("backend.samples.check", "backend.voices")}
    assert area_faults(three) == [
        "these areas import each other in a circle: backend.clone -> backend.samples -> backend.voices"
    ]
    behind = {("backend.voices.service", "backend.clone.start")}
    assert area_faults(behind) == ["backend.voices.service imports backend.clone.start, behind backend.clone's face"]
    assert area_faults({("backend.voices.service", "backend.clone.api")}) == []


def test_the_areas_stand_on_three_floors_at_most() -> None:
    floors = area_floors(area_graph(IMPORTS))
    assert max(floors.values()) <= 3, f"the areas stand on more than three floors: {floors}"


def drawn_area_graph() -> str:
    """The areas' graph as docs/concepts.md draws it: a floor a line, from the top down, each area with the
    areas it uses."""
    edges = area_graph(IMPORTS)
    floors = area_floors(edges)
    lines = []
    for level in sorted(set(floors.values()), reverse=True):
        for area in sorted(a for a, f in floors.items() if f == level):
            uses = sorted(target.removeprefix("backend.") for source, target in edges if source == area)
            arrow = f" -> {', '.join(uses)}" if uses else ""
            lines.append(f"floor {level}  {area.removeprefix('backend.')}{arrow}")
    return "\n".join(lines)


def test_docs_draw_the_areas_graph_as_the_code_has_it() -> None:
    """docs/concepts.md draws the areas' graph between two markers; it is redrawn from the imports here."""
    text = (ROOT / "docs" / "concepts.md").read_text()
    begin, end = "<!-- areas: begin -->", "<!-- areas: end -->"
    assert begin in text, f"docs/concepts.md lacks the areas' graph after {begin}"
    assert end in text, f"docs/concepts.md lacks the end of the areas' graph, {end}"
    drawn = text.split(begin, 1)[1].split(end, 1)[0].strip().removeprefix("```text").removesuffix("```").strip()
    assert drawn == drawn_area_graph(), "redraw the areas' graph in docs/concepts.md:\n" + drawn_area_graph()


def _impurities(module: str, path: Path) -> list[str]:
    """What makes a module of `backend.policy` more than policy: the worker context, SQL or a connection, or a
    type a route answers (a camelCase Struct)."""
    found = [
        f"imports {target}"
        for target in _imported(module, path)
        if target in {"backend.context", "backend.db.connection"}
    ]
    if _runs_sql(path):
        found.append("runs SQL")
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ClassDef) and any(
            word.arg == "rename" and isinstance(word.value, ast.Constant) and word.value.value == "camel"
            for word in node.keywords
        ):
            found.append(f"defines the API type {node.name}")
    return found


def test_policy_is_pure() -> None:
    """`backend.policy` holds decisions more than one area asks: given what the area read, it answers; it takes
    no worker context, runs no SQL and defines no type a route answers."""
    found = {module: _impurities(module, path) for module, path in MODULES.items() if _top(module) == "backend.policy"}
    assert found, "backend.policy has no modules"
    assert not {module: why for module, why in found.items() if why}, "policy must be pure"


#: What policy may not reach, by any chain of imports: a database, and the records that talk to one.
DATABASE_SIDE = ("backend.records", "backend.db", "psycopg", "psycopg_pool")


def test_policy_reaches_no_database_through_any_import() -> None:
    """Importing a rule loads no driver and reads no `.sql` file: what policy weighs are plain types
    (`backend.domain`), which the records read and write."""
    reached: dict[str, list[str]] = {}
    for start in (module for module in MODULES if _top(module) == "backend.policy"):
        seen, ahead = {start}, [start]
        while ahead:
            module = ahead.pop()
            for target in _targets(module, MODULES[module]) if module in MODULES else ():
                if target.startswith(DATABASE_SIDE) and (target + ".").startswith(
                    tuple(f"{s}." for s in DATABASE_SIDE)
                ):
                    reached.setdefault(start, []).append(f"{module} -> {target}")
                known = _known(target)
                if known is not None and known not in seen:
                    seen.add(known)
                    ahead.append(known)
    assert reached == {}


def _circles(edges: set[tuple[str, str]]) -> set[frozenset[str]]:
    """The circles of the graph `edges`, of any length: each set of two or more nodes that all reach each
    other (a strongly connected component)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        if source != target:
            graph.setdefault(source, set()).add(target)
    reach: dict[str, set[str]] = {}
    for start in graph:
        seen: set[str] = set()
        ahead = [start]
        while ahead:
            for step in graph.get(ahead.pop(), ()):
                if step not in seen:
                    seen.add(step)
                    ahead.append(step)
        reach[start] = seen
    return {
        frozenset({node} | {other for other in seen if node in reach.get(other, ())})
        for node, seen in reach.items()
        if node in seen
    }


def test_circles_of_any_length_are_found() -> None:
    """The finder itself: a circle of three, beside a chain and a pair, is found whole."""
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "f"), ("f", "e"), ("d", "d")}
    assert _circles(edges) == {frozenset("abc"), frozenset("ef")}


def test_no_modules_and_no_top_level_packages_import_each_other_in_a_circle() -> None:
    tops = {(_top(module), _top(target)) for module, target in IMPORTS}
    circles = _circles(IMPORTS) | _circles(tops)
    new = circles - KNOWN_CIRCLES.keys()
    gone = KNOWN_CIRCLES.keys() - circles
    assert not new, "these import each other in a circle: " + "; ".join(
        " -> ".join(sorted(circle)) + " (" + ", ".join(_ties(circle)) + ")" for circle in new
    )
    assert not gone, f"these known circles are untied: strike them from KNOWN_CIRCLES: {sorted(map(sorted, gone))}"


def _ties(circle: frozenset[str]) -> list[str]:
    """The imports that tie a circle's members (modules, or top-level packages) to each other."""
    return sorted(
        f"{module} -> {target}"
        for module, target in IMPORTS
        if {module, target} <= circle or ({_top(module), _top(target)} <= circle and _top(module) != _top(target))
    )


def _shrinks(found: set[Any], known: dict[Any, str], what: str, name: str) -> None:
    new, gone = sorted(found - known.keys()), sorted(known.keys() - found)
    assert not new, f"{what}: {new}"
    assert not gone, f"these are gone: strike them from {name}: {gone}"


def test_no_product_module_imports_the_tests_the_benchmarks_or_the_development_aids() -> None:
    found = {
        (module, ".".join(target.split(".")[:2]))
        for module, path in MODULES.items()
        if module.split(".")[0] in PRODUCT
        for target in _targets(module, path)
        if target.split(".")[0] in ("tests", "bench", *DEV_AIDS, *BENCHMARK_ONLY)
    }
    _shrinks(
        found,
        KNOWN_TEST_IMPORTS,
        "these product modules import the tests, the benchmarks or the development aids",
        "KNOWN_TEST_IMPORTS",
    )


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstrings' nodes in `tree`: prose, which may show a command without running it."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _runs_a_module_of(source: str, tops: tuple[str, ...] = NOT_RUN) -> list[str]:
    """Where `source` names a module of `tops` to run or load: a string that is one's dotted name
    (`"tests.fakes"`, to `-m`, `runpy` or `importlib` alike), a top itself right after `"-m"` in a list, a tuple
    or a call's arguments (written there, or a name bound to it), or a command line that runs one with `-m`
    (`"python -m tests.fakes all"`). Docstrings are prose and are not read."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    alternatives = "|".join(map(re.escape, tops))
    dotted = re.compile(rf"(?:{alternatives})\.[\w.]*")
    command = re.compile(rf"(?:^|\s)-m\s*(?:{alternatives})(?:\.[\w.]*)?(?:\s|$)")
    bound = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }

    def text(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.JoinedStr) and node.values:  # f"tests.{name}": its first part
            return text(node.values[0])
        return None

    found = []
    for node in ast.walk(tree):
        literal = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        if literal and (dotted.fullmatch(node.value) or command.search(node.value)):
            found.append(f"line {node.lineno}: {node.value!r}")
        items = node.elts if isinstance(node, ast.List | ast.Tuple) else node.args if isinstance(node, ast.Call) else []
        for flag, module in itertools.pairwise(items):
            if text(flag) == "-m" and (name := text(module)) is not None and name.split(".")[0] in tops:
                found.append(f"line {module.lineno}: -m {name}")
    return found


def test_the_finder_of_modules_run_from_the_tests_finds_each_way_of_naming_one() -> None:
    """The finder itself, on snippets: each way a module names the tests to run is found, and what only looks
    like one (prose, the fakes, a word that starts so) is not."""
    runs = {
        "listed": 'subprocess.run([sys.executable, "-m", "tests.fakes", "all"])',
        "a top": 'subprocess.run([sys.executable, "-m", "tests"])',
        "named": 'MODULE = "tests"\nsubprocess.run([sys.executable, "-m", MODULE, "all"])',
        "typed": 'MODULE: str = "bench"\nsubprocess.Popen(("python", "-m", MODULE))',
        "arguments": 'command("-m", "bench.scale")',
        "a command line": 'os.system("python -m tests.fakes all")',
        "joined": 'subprocess.run(f"python -mtests.e2e.up {port}", shell=True)',
        "formatted": 'subprocess.run([sys.executable, "-m", f"tests.{name}"])',
        "loaded": 'runpy.run_module("tests.fakes", run_name="__main__")',
        "imported": 'importlib.import_module("tests.support")',
    }
    for why, snippet in runs.items():
        assert _runs_a_module_of(snippet), f"not found ({why}): {snippet}"
    not_runs = {
        "prose": 'def up():\n    """Runs `python -m tests.fakes all`."""\n    return 0',
        "the fakes": 'FAKES = "fakes"\nsubprocess.run([sys.executable, "-m", FAKES, "all"])',
        "a word": 'subprocess.run([sys.executable, "-m", "testsuite"]); path = "contests.txt"',
        "a path": 'HINT = "tests/unit/test_layers.py holds it"',
        "not after -m": 'counts = {"tests": 3, "bench": 1}',
    }
    for why, snippet in not_runs.items():
        assert not _runs_a_module_of(snippet), f"found ({why}): {snippet}"


def test_no_product_module_runs_a_module_of_the_tests_the_benchmarks_or_devkit() -> None:
    """`voicegate up --fake-providers` once ran `python -m tests.fakes`: a program of the tests, which no wheel
    holds. A product module may start the provider fakes (`python -m fakes`), never the tests, the benchmarks or
    devkit."""
    found = [
        f"{module} {where}"
        for module, path in MODULES.items()
        if module.split(".")[0] in PRODUCT
        for where in _runs_a_module_of(path.read_text())
    ]
    assert not found, f"these product modules run a module of the tests, the benchmarks or devkit: {found}"


#: The folders that stand on `backend/`: the program, the consumers, the operator scripts, and the stand-ins for
#: Supabase, which the program hands to the product in embedded mode (`backend.compose.embedded`).
ABOVE_BACKEND = ("voicegate", "queue_consumers", "scripts", "standins")


def test_backend_imports_none_of_the_folders_above_it() -> None:
    """`queue_consumers/`, `scripts/`, `standins/` and `voicegate/` stand on `backend/`; `backend/` stands on none
    of them, not even lazily for embedded mode."""
    found = {
        (module, ".".join(target.split(".")[:2]) if target.startswith("queue_consumers.") else target.split(".")[0])
        for module, target in IMPORTS
        if module.split(".")[0] == "backend" and target.split(".")[0] in ABOVE_BACKEND
    }
    _shrinks(found, KNOWN_FOLDER_UPWARD, "these modules of backend/ import the folders above it", "KNOWN_FOLDER_UPWARD")


def _runs_sql(path: Path) -> bool:
    """Whether the module has named queries of its own, or calls the driver or `backend.db.execute`."""
    if path.with_suffix(".sql").exists():
        return True
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in _SQL_CALLS:
                return True
    return False


def test_sql_runs_only_in_the_data_layers() -> None:
    data = {index for index, (name, _) in enumerate(LAYERS) if name.startswith(DATA_LAYERS)}
    found = {
        module
        for module, path in MODULES.items()
        if module.split(".")[0] in PRODUCT and layer_of(module) not in data and _runs_sql(path)
    }
    _shrinks(found, KNOWN_SQL, "these modules above the data layers run SQL", "KNOWN_SQL")


def test_only_the_http_layer_and_the_entry_points_import_litestar() -> None:
    importers = sorted(
        module
        for module, path in MODULES.items()
        if module.split(".")[0] == "backend"
        and not any(module == allowed or module.startswith(allowed + ".") for allowed in LITESTAR_IMPORTERS)
        and any(target == "litestar" or target.startswith("litestar.") for target in _targets(module, path))
    )
    assert not importers, f"only LITESTAR_IMPORTERS may import litestar; these do too: {importers}"


def test_the_worker_and_the_operator_scripts_load_no_web_framework() -> None:
    """What the worker and a script import, whatever embedded mode reads for them, leaves Litestar unloaded: the
    stand-ins the app serves (`standins.in_app`) come in with the app alone."""
    program = (
        "import sys; import queue_consumers.worker, scripts._common, standins.embedded, backend.compose.operator;"
        " print(sorted(m for m in sys.modules if m.split('.')[0] == 'litestar'))"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_records_stand_on_the_database_alone() -> None:
    """A record needs only its plain types, the db layer and leaf utilities, not the adapters beside it in its layer."""
    floor = next(index for index, (name, _) in enumerate(LAYERS) if name == "plain types")
    reaching = sorted(
        f"{module} -> {target}"
        for module, target in IMPORTS
        if _top(module) == "backend.records" and _top(target) != "backend.records" and (layer_of(target) or 0) < floor
    )
    assert not reaching, f"records import only backend.db and leaf utilities: {reaching}"


def _pool_uses(module: str, path: Path) -> Iterator[str]:
    """Where `module` names a pool: an import of one of `_POOL_NAMES`, or a `.pool` attribute (a pool held
    by something else: a lifecycle's, a `Database`'s)."""
    yield from (f"imports {target}" for target in _targets(module, path) if target in _POOL_NAMES)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "pool":
            yield f"reads .pool on line {node.lineno}"


def test_only_the_database_layer_and_the_composition_name_a_pool() -> None:
    """A use case (a handler, a consumer, a script) is given the `Database` (`backend.db.units`), whose methods are
    the units of work, or the `Connection` of its caller's unit: never the pool, so every transaction outside
    `backend/db/` is opened one way."""
    found = sorted(
        f"{module} {use}"
        for module, path in MODULES.items()
        if module.split(".")[0] in PRODUCT
        and not any(module == holder or module.startswith(holder + ".") for holder in POOL_HOLDERS)
        for use in _pool_uses(module, path)
    )
    assert not found, f"only POOL_HOLDERS may name a pool; take the Database instead: {found}"


#: The most lines a product module may have: past it, a module holds more than one thing to find.
MODULE_LINES = 700


def test_no_product_module_passes_the_most_lines() -> None:
    """The stand-ins for Supabase included: they are read as often as the product."""
    long = {
        str(path.relative_to(ROOT)): lines
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MODULE_LINES
    }
    assert long == {}, f"split these along the lines their parts draw: {long}"


def test_each_public_class_name_is_defined_once_in_the_product() -> None:
    """One name for one thing: two classes of one name (a protocol and what implements it, a receipt's target and
    a webhook's) make a reader guess which one a module means."""
    defined: dict[str, list[str]] = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    defined.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert {name: where for name, where in defined.items() if len(where) > 1} == {}


#: Words that name one concept of the product's, and that concept alone: no module or public class of the product
#: borrows them for something else (a request's checks, a noise reducer, a consumer's wait for Storage).
ONE_CONCEPT_WORDS = {"gate": "the launch gate (`voice_launch_readiness`)"}
#: Module names that say nothing of what their module does.
SILENT_MODULE_NAMES = frozenset({"door.py", "budget.py", "misc.py", "utils.py", "helpers.py", "common.py"})


def test_words_of_one_concept_and_module_names_that_say_what_they_do() -> None:
    borrowed: list[str] = []
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            where = str(path.relative_to(ROOT))
            if path.name in SILENT_MODULE_NAMES:
                borrowed.append(f"{where}: a module name that says what it does")
            for word, concept in ONE_CONCEPT_WORDS.items():
                if word in path.stem.lower().split("_"):
                    borrowed.append(f"{where}: '{word}' names {concept}")
                borrowed += [
                    f"{where}: class {node.name}: '{word}' names {concept}"
                    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.ClassDef)
                    and not node.name.startswith("_")
                    and word in (part.lower() for part in re.findall("[A-Z][a-z]*", node.name))
                ]
    assert borrowed == []


def test_no_records_module_shares_its_name_with_an_area() -> None:
    """A records module named as an area (`records/voices.py` beside `backend/voices/`) makes every module that
    uses both import one under another name."""
    areas = {path.name for path in (ROOT / "backend").iterdir() if (path / "__init__.py").is_file()}
    records = {path.stem for path in (ROOT / "backend" / "records").glob("*.py")}
    assert records & areas == set()
