"""Benchmark: the ``local`` engine (Piper + WORLD) beside espeak-ng alone and the old espeak-ng + WORLD engine.

Run pinned to one core, as the target is stated for one core::

    taskset -c 0 python bench/local_tts.py [--repeat 5] [--out-dir .voicegate/bench]

For a 20-word sentence and for the preview route's sentence it prints, per engine, the median over
``--repeat`` runs of wall-clock and CPU seconds and the real-time factor (seconds spent per second of
audio). The engine speaks at the sample's pace through Piper's own duration control (``length_scale``)
and runs WORLD at 10 ms frames for pitch and envelope only; the old engine is reproduced here as it
was (WORLD at 5 ms frames, the pace changed by repeating or dropping WORLD frames). The Piper model's
one-off load time, the one-off reading that measures the voice's own pace, and the resident memory
the model costs are printed too, and the new engine's WAV (and the old engine's, for comparison) is
saved where the last lines say, with its duration, level, median F0 and spectral centroid.

Target (issue 16): the new engine speaks the 20-word sentence at a real-time factor (CPU seconds per
second of audio) of at most 0.1.
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
import pyworld

from backend.cpu import CpuExecutor
from backend.providers.base import ProviderVoice, SampleRef
from backend.providers.local.engine import TEMPO_LIMITS, render, shape_envelope, shift_pitch, voice_pace
from backend.providers.local.espeak import Espeak
from backend.providers.local.piper import PiperVoice
from backend.providers.local.profile import (
    FRAME_PERIOD_MS,
    Signal,
    VoiceProfile,
    pitch_stats,
    syllable_rate,
    world_analysis,
)
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

    async def enrol() -> ProviderVoice:
        async with CpuExecutor(1) as cpu:
            return await LocalProvider(cpu=cpu).enroll(
                [sample], name="bench", language="en", transcript=None, key="bench"
            )

    return VoiceProfile(**asyncio.run(enrol()).metadata["profile"])


def old_adapt(x: Signal, rate: int, profile: VoiceProfile) -> Signal:
    """The old engine's WORLD step: 5 ms analysis with full-rate DIO, pitch and envelope moved, then the
    frame sequence stretched or squeezed (frames repeated or dropped) towards the sample's pace."""
    analysis = world_analysis(x, rate, with_aperiodicity=True)
    assert analysis.ap is not None
    f0 = shift_pitch(analysis.f0, profile)
    sp = shape_envelope(analysis.sp, analysis.f0, rate, profile)
    source_rate, target_rate = syllable_rate(x, rate), profile.syllable_rate_hz
    factor = float(np.clip(source_rate / target_rate, *TEMPO_LIMITS)) if source_rate > 0 < target_rate else 1.0
    index = np.minimum((np.arange(max(1, round(len(f0) * factor))) / factor).astype(int), len(f0) - 1)
    y = pyworld.synthesize(
        np.ascontiguousarray(f0[index]),
        np.ascontiguousarray(sp[index]),
        np.ascontiguousarray(analysis.ap[index]),
        rate,
        FRAME_PERIOD_MS,
    )
    return y * (0.9 / float(np.max(np.abs(y))))


def describe(audio: Signal, rate: int) -> str:
    """Duration, RMS level, median F0 and spectral centroid: a listening stand-in for a saved WAV."""
    median_f0, _ = pitch_stats(world_analysis(audio, rate, with_aperiodicity=False).f0)
    power = np.abs(np.fft.rfft(audio)) ** 2
    centroid = float(np.sum(power * np.fft.rfftfreq(len(audio), 1 / rate)) / np.sum(power))
    rms_dbfs = 20 * np.log10(float(np.sqrt(np.mean(audio**2))))
    return (
        f"{len(audio) / rate:.2f} s, RMS {rms_dbfs:.1f} dBFS, median F0 {median_f0:.1f} Hz, centroid {centroid:.0f} Hz"
    )


def engines(espeak: Espeak, piper: PiperVoice, profile: VoiceProfile) -> dict[str, Callable[[str], Speech]]:
    """Each engine as text -> (samples, rate)."""

    def espeak_only(text: str) -> Speech:
        return espeak.synthesize(text), espeak.sample_rate

    def old_engine(text: str) -> Speech:
        # What the local engine was before Piper: espeak-ng's speech through the same WORLD adaptation.
        pcm = espeak.synthesize(text).astype(np.float64) / 32768.0
        return old_adapt(pcm, espeak.sample_rate, profile), espeak.sample_rate

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
    started = time.process_time()
    pace = voice_pace(piper)
    pace_s = time.process_time() - started

    speakers = engines(espeak, piper, profile)
    sentence = {name: timed(partial(fn, SENTENCE), args.repeat) for name, fn in speakers.items()}
    preview = {name: timed(partial(fn, PREVIEW), args.repeat) for name, fn in speakers.items()}

    print(f"{len(SENTENCE.split())}-word sentence and preview text, median of {args.repeat} runs each")
    report(f"{len(SENTENCE.split())}-word sentence:", sentence)
    report("preview sentence:", preview)
    new = "new: Piper + WORLD (local engine)"
    rtf = statistics.median(r[1] / r[2] for r in sentence[new])
    verdict = "meets" if rtf <= TARGET_RTF else "MISSES"
    print(f"target: new engine RTF <= {TARGET_RTF} on one core (CPU): {verdict} ({rtf:.3f})")
    print(
        f"Piper model: load {load_s:.2f} s once per process; RSS +{loaded - before:.0f} MB loaded, "
        f"+{warmed - before:.0f} MB after the first sentence; the voice's pace ({pace:.2f} syllables/s, "
        f"the sample's {profile.syllable_rate_hz:.2f}) read once per process in {pace_s:.2f} CPU s"
    )
    print(f"reference sample's profile: median F0 {profile.median_f0_hz:.1f} Hz")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for label, name in (("piper_world", new), ("espeak_world", "old: espeak-ng + WORLD (baseline)")):
        audio, rate = speakers[name](SENTENCE)
        path = args.out_dir / f"local_tts_{label}.wav"
        path.write_bytes(float_to_wav(np.asarray(audio, dtype=np.float64), rate))
        print(f"saved {name}: {path} ({describe(np.asarray(audio, dtype=np.float64), rate)})")


if __name__ == "__main__":
    main()
