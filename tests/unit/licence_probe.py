"""What a voicegate process maps into memory, for `test_licences.py`: run as `python -m tests.unit.licence_probe`.

It imports every module of the packages voicegate installs (what the API, the worker and the operator scripts
are made of), enrols a voice with the `local` engine, streams a clip in its voice, encodes the clip in each
streaming format and decodes the encodings back, takes the clip's voiceprint and checks it against a consent
phrase (libraries that load on first use load then), and prints as JSON what it did and every ELF file mapped
into it, from /proc/self/maps.

It imports nothing of the tests' own (their corpus is made with libraries voicegate does not load), only the
standard library and voicegate.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np

from backend.audio.decode import decode_audio
from backend.audio.formats import StreamEncoder
from backend.consents.phrase import check_phrase, phrase_for
from backend.cpu import CpuExecutor
from backend.providers.base import STREAM_SAMPLE_RATE, SampleRef
from backend.providers.local.provider import LocalProvider
from backend.voiceprint import voiceprint
from backend.wav import float_to_wav

PACKAGES: Final = ("backend", "standins", "queue_consumers", "scripts")
TEXT: Final = "Every library this process maps is checked for its licence, one by one."
SAMPLE_S: Final = 5.0


def import_everything() -> list[str]:
    """Import every module of ``PACKAGES`` (an import error fails the probe) and return their names."""
    names: list[str] = []
    for package in PACKAGES:
        names.append(importlib.import_module(package).__name__)
        path = importlib.import_module(package).__path__
        for module in pkgutil.walk_packages(path, f"{package}.", onerror=_unimportable):
            names.append(importlib.import_module(module.name).__name__)
    return names


def _unimportable(name: str) -> None:
    raise ImportError(f"{name} cannot be imported")


def enrolment_sample() -> bytes:
    """A speech-like WAV: a gliding 140 Hz harmonic tone in 4 Hz syllable bursts."""
    t = np.arange(int(SAMPLE_S * STREAM_SAMPLE_RATE)) / STREAM_SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(140.0 * 2 ** (np.sin(np.pi * t) / 6)) / STREAM_SAMPLE_RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 20)) * np.clip(np.sin(8 * np.pi * t), 0.0, None)
    return float_to_wav(0.5 * signal / np.max(np.abs(signal)), STREAM_SAMPLE_RATE)


async def speak() -> bytes:
    """A clip of ``TEXT`` streamed by the `local` engine in a voice enrolled from ``enrolment_sample``."""
    sample = SampleRef(
        data=enrolment_sample(),
        mime_type="audio/wav",
        duration_s=SAMPLE_S,
        sample_rate=STREAM_SAMPLE_RATE,
        channels=1,
    )
    async with CpuExecutor(1) as cpu:
        provider = LocalProvider(cpu=cpu)
        voice = await provider.enrol([sample], name="probe", language="en", transcript=None, key="licence-probe")
        return b"".join([pcm async for pcm in provider.stream(voice, TEXT)])


def mapped_elf_files() -> list[str]:
    """Every ELF file mapped into this process, resolved, sorted."""
    paths = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            paths.add(os.path.realpath(fields[5]))
    return sorted(path for path in paths if _is_elf(path))


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as file:  # noqa: PTH123 - a path read from /proc, checked as it is
            return file.read(4) == b"\x7fELF"
    except OSError:
        return False


def main() -> None:
    """Do the work, then print the report as JSON."""
    modules = import_everything()
    pcm = asyncio.run(speak())
    report: dict[str, Any] = {"modules": modules, "spoken_s": len(pcm) / 2 / STREAM_SAMPLE_RATE, "decoded_s": {}}
    for fmt in ("wav", "mp3"):
        encoder = StreamEncoder(fmt)
        encoded = encoder.feed(pcm) + encoder.finish()
        report["decoded_s"][fmt] = decode_audio(encoded).duration_s
    spoken = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    printed = voiceprint(spoken, STREAM_SAMPLE_RATE)
    report["voiceprint_norm"] = None if printed is None else float(np.linalg.norm(printed.vector))
    report["phrase_speech_s"] = check_phrase(spoken, STREAM_SAMPLE_RATE, phrase_for("Probe", "1234")).speech_seconds
    # A consent language beyond English: Whisper heard on CTranslate2, whose libraries load then.
    report["whisper_speech_s"] = check_phrase(
        spoken, STREAM_SAMPLE_RATE, phrase_for("Probe", "1234", "es")
    ).speech_seconds
    report["mapped"] = mapped_elf_files()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
