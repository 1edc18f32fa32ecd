"""Speech for the tests and benchmarks, from the ``espeak-ng`` executable run in a subprocess.

espeak-ng is GPL: as a separate program it may be used, but its library is never loaded into a
voicegate or test process. ``make test`` installs Debian's ``espeak-ng`` package
(``.ci/ensure-packages``); without it, every test that needs speech fails with ``MISSING``.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
import subprocess
import wave

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

MISSING = (
    "the espeak-ng executable is not installed, and the tests make their speech with it: run `make test` "
    "(its .ci/ensure-packages installs the Debian package espeak-ng), or install espeak-ng"
)
#: Sentences the benchmarks have spoken (by espeak-ng, the local engine and the ElevenLabs fake): each is 2 s or more
#: of speech, long enough for the watermark's detection.
SENTENCES = (
    "Please confirm your appointment for Tuesday at noon, and bring the forms with you.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Weather today is cloudy with a chance of rain later in the afternoon.",
    "Numbers like forty two and seven hundred are spoken as words in this sentence.",
    "I would like to thank everyone who came tonight, it means a great deal to us.",
    "Turn left at the second light, then keep going until you see the old church.",
    "Our new opening hours start next Monday, from eight in the morning until six.",
)
#: Bound on one call; a sentence takes tens of milliseconds even on a loaded machine.
TIMEOUT_S = 60.0


def speak(text: str, rate: int, *, voice: str = "en", pitch: int = 50, speed_wpm: int = 175) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng (``pitch`` 0-99, ``speed_wpm`` words a minute), as mono float samples at
    ``rate``; the same call in one process runs espeak-ng once."""
    native, pcm = _spoken(text, voice, pitch, speed_wpm)
    samples = pcm.astype(np.float32) / 32768.0
    common = math.gcd(native, rate)
    resampled: npt.NDArray[np.float32] = resample_poly(samples, rate // common, native // common).astype(np.float32)
    return resampled


@functools.lru_cache(maxsize=256)
def _spoken(text: str, voice: str, pitch: int, speed_wpm: int) -> tuple[int, npt.NDArray[np.int16]]:
    """espeak-ng's sample rate and its 16-bit samples of ``text`` (read-only: the array is shared)."""
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise RuntimeError(MISSING)
    # -z: no pause after the last sentence (the library's synthesis, used before, added none).
    command = [executable, "--stdout", "-z", "-v", voice, "-p", str(pitch), "-s", str(speed_wpm), "--stdin"]
    done = subprocess.run(command, input=text.encode(), capture_output=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"espeak-ng exited with {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
    # Writing to a pipe, espeak-ng cannot go back to fill in the sizes: the header claims ~2 GiB, and
    # `wave` reads what is there.
    with wave.open(io.BytesIO(done.stdout), "rb") as spoken:
        if (spoken.getnchannels(), spoken.getsampwidth()) != (1, 2):
            raise RuntimeError("espeak-ng wrote something other than 16-bit mono WAV")
        pcm = np.frombuffer(spoken.readframes(spoken.getnframes()), dtype="<i2")
        return spoken.getframerate(), pcm
