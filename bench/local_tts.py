"""Benchmark: the ``local`` engine (Piper + WORLD) beside espeak-ng alone and the old espeak-ng + WORLD engine.

Run pinned to one core, as the target is stated for one core::

    taskset -c 0 python bench/local_tts.py [--repeat 5] [--out-dir .voicegate/bench]

For a 20-word sentence and for the preview route's sentence it prints, per engine, the median over
``--repeat`` runs of wall-clock and CPU seconds and the real-time factor (seconds spent per second of
audio). The Piper model's one-off load time and the resident memory it costs are printed too, and the
new engine's WAV (and the old engine's, for comparison) is saved where the last lines say.

Target (issue 16): the new engine speaks the 20-word sentence at a real-time factor of at most 0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from backend.providers.base import SampleRef
from backend.providers.local.engine import adapt, render
from backend.providers.local.espeak import Espeak
from backend.providers.local.piper import PiperVoice
from backend.providers.local.profile import VoiceProfile
from backend.providers.local.provider import LocalProvider
from backend.providers.wav import float_to_wav

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while seven happy children sing cheerful songs about "
    "summer rain today."
)
# The text every preview speaks (the preview step's PREVIEW_TEXT); the e2e suites say it many times.
PREVIEW = "Hello! This is a preview of your new voice. If it sounds like you, you are all set."
TARGET_RTF = 0.1

Run = tuple[float, float, float]  # wall s, CPU s, audio s
Speech = tuple[np.ndarray, int]  # samples, sample rate


def timed(fn: Callable[[], Speech], repeat: int) -> list[Run]:
    """Wall-clock and CPU seconds of each of ``repeat`` calls, with the seconds of audio each made."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        audio, rate = fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu, len(audio) / rate))
    return runs


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reference_profile(espeak: Espeak) -> VoiceProfile:
    """Enrol a reference voice, espeak-ng at a low pitch (what a test user might record), and return its profile."""
    pcm = espeak.synthesize("This is my voice, recorded for a short reference sample today.", pitch=25)
    data = float_to_wav(pcm.astype(np.float64) / 32768.0, espeak.sample_rate)
    sample = SampleRef(data=data, mime_type="audio/wav", sample_rate=espeak.sample_rate, channels=1)
    provider = LocalProvider()
    voice = asyncio.run(provider.enroll([sample], name="bench", language="en", transcript=None, key="bench"))
    return VoiceProfile(**voice.metadata["profile"])


def engines(espeak: Espeak, piper: PiperVoice, profile: VoiceProfile) -> dict[str, Callable[[str], Speech]]:
    """Each engine as text -> (samples, rate)."""

    def espeak_only(text: str) -> Speech:
        return espeak.synthesize(text), espeak.sample_rate

    def old_engine(text: str) -> Speech:
        # What the local engine was before Piper: espeak-ng's speech through the same WORLD adaptation.
        pcm = espeak.synthesize(text).astype(np.float64) / 32768.0
        return adapt(pcm, espeak.sample_rate, profile), espeak.sample_rate

    def piper_only(text: str) -> Speech:
        return piper.speak(text), piper.sample_rate

    def new_engine(text: str) -> Speech:
        return render(text, profile, voice=piper)

    return {
        "espeak-ng alone (baseline)": espeak_only,
        "old: espeak-ng + WORLD (baseline)": old_engine,
        "Piper alone (no WORLD)": piper_only,
        "new: Piper + WORLD (local engine)": new_engine,
    }


def report(title: str, results: dict[str, list[Run]]) -> None:
    """One row per engine: medians of wall and CPU seconds, audio seconds and both real-time factors."""
    print(title)
    print(f"  {'engine':<36}{'wall s':>8}{'cpu s':>8}{'audio s':>9}{'RTF wall':>10}{'RTF cpu':>9}")
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        audio = statistics.median(r[2] for r in runs)
        print(f"  {name:<36}{wall:>8.3f}{cpu:>8.3f}{audio:>9.2f}{wall / audio:>10.3f}{cpu / audio:>9.3f}")


def main() -> None:
    """Print every engine's figures side by side, the model's load cost, and where the WAVs went."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out-dir", type=Path, default=Path(".voicegate/bench"))
    args = parser.parse_args()
    espeak = Espeak.shared()
    profile = reference_profile(espeak)

    before = rss_mb()
    started = time.perf_counter()
    piper = PiperVoice.shared()
    load_s = time.perf_counter() - started
    loaded = rss_mb()
    piper.speak(SENTENCE)  # the first run sizes onnxruntime's buffers
    warmed = rss_mb()

    speakers = engines(espeak, piper, profile)
    sentence = {name: timed(partial(fn, SENTENCE), args.repeat) for name, fn in speakers.items()}
    preview = {name: timed(partial(fn, PREVIEW), args.repeat) for name, fn in speakers.items()}

    print(f"{len(SENTENCE.split())}-word sentence and preview text, median of {args.repeat} runs each")
    report(f"{len(SENTENCE.split())}-word sentence:", sentence)
    report("preview sentence:", preview)
    new = "new: Piper + WORLD (local engine)"
    rtf = statistics.median(r[0] / r[2] for r in sentence[new])
    verdict = "meets" if rtf <= TARGET_RTF else "MISSES"
    print(f"target: new engine RTF <= {TARGET_RTF} on one core (wall): {verdict} ({rtf:.3f})")
    print(
        f"Piper model: load {load_s:.2f} s once per process; RSS +{loaded - before:.0f} MB loaded, "
        f"+{warmed - before:.0f} MB after the first sentence"
    )

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for label, name in (("piper_world", new), ("espeak_world", "old: espeak-ng + WORLD (baseline)")):
        audio, rate = speakers[name](SENTENCE)
        path = args.out_dir / f"local_tts_{label}.wav"
        path.write_bytes(float_to_wav(np.asarray(audio, dtype=np.float64), rate))
        print(f"saved {name}: {path}")


if __name__ == "__main__":
    main()
