"""Benchmark: a 20-word sentence through the ``local`` provider beside plain espeak-ng synthesis.

Run: ``python bench/local_tts.py [--repeat N]``. Prints seconds per synthesis (best and median of N)
for both, measured in the same run on one core (the WORLD analysis/synthesis is single-threaded).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import numpy as np

from backend.providers.base import SampleRef
from backend.providers.local.espeak import Espeak
from backend.providers.local.provider import LocalProvider
from backend.providers.wav import float_to_wav

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while seven happy children sing cheerful songs about "
    "summer rain today."
)
TARGET_S = 2.0


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of each of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def reference_sample(espeak: Espeak) -> SampleRef:
    """A reference voice: espeak-ng at a low pitch (what a test user might record)."""
    pcm = espeak.synthesize("This is my voice, recorded for a short reference sample today.", pitch=25)
    data = float_to_wav(pcm.astype(np.float64) / 32768.0, espeak.sample_rate)
    return SampleRef(data=data, mime_type="audio/wav", sample_rate=espeak.sample_rate, channels=1)


def main() -> None:
    """Print the local-provider figure next to the plain espeak-ng baseline."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    words = len(SENTENCE.split())
    espeak = Espeak.shared()
    provider = LocalProvider()
    voice = asyncio.run(
        provider.enroll([reference_sample(espeak)], name="bench", language="en", transcript=None, key="bench")
    )
    baseline = timed(lambda: espeak.synthesize(SENTENCE), args.repeat)
    local = timed(lambda: asyncio.run(provider.synthesize(voice, SENTENCE)), args.repeat)
    print(f"text: {words} words, {args.repeat} runs each (seconds per synthesis)")
    print(f"{'engine':<34}{'best':>8}{'median':>8}")
    print(f"{'espeak-ng only (baseline)':<34}{min(baseline):>8.3f}{statistics.median(baseline):>8.3f}")
    print(f"{'local (espeak-ng + WORLD)':<34}{min(local):>8.3f}{statistics.median(local):>8.3f}")
    verdict = "meets" if statistics.median(local) < TARGET_S else "MISSES"
    print(f"target < {TARGET_S:.1f} s for the local provider: {verdict}")


if __name__ == "__main__":
    main()
