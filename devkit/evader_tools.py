"""The tools an evader edits pitch and time with, run as they are: Debian's `sox`, `rubberband` and `praat` as
programs, ffmpeg's `rubberband` filter (the ffmpeg executable voicegate finds), librosa's phase vocoder and WORLD's
analysis and resynthesis (pyworld) as libraries. For the watermark's tests and benchmark: an imitation of a tool
(an ffmpeg chain for sox's `pitch`, `devkit.audio_edits`) is not the tool, and a detector tuned on one missed the
other.

Each takes mono float samples and their rate and gives back mono float64 samples at the same rate, as the tool
wrote them (16-bit WAV where the tool writes a file: what a user would keep). Praat and sox are GPL programs,
rubberband's CLI too: they run as separate executables, never loaded into the process.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile

from backend.audio.ffmpeg import find_ffmpeg

F64 = npt.NDArray[np.float64]
#: An edit: (samples, rate) -> samples at the same rate.
Edit = Callable[[npt.NDArray[np.floating], int], F64]
#: How long one tool may take over a clip of a few seconds on a loaded machine.
TIMEOUT_S: Final = 120.0
#: Praat's PSOLA: its manipulation's time step and pitch range (Praat's defaults for speech).
_PRAAT_SCRIPT: Final = """form PSOLA
  sentence In
  sentence Out
  real Factor 1.0
endform
sound = Read from file: in$
manipulation = To Manipulation: 0.01, 75, 600
tier = Extract pitch tier
Multiply frequencies: 0, 1e9, factor
selectObject: manipulation, tier
Replace pitch tier
selectObject: manipulation
result = Get resynthesis (overlap-add)
Save as WAV file: out$
"""


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-500:]}")


def _through(samples: npt.NDArray[np.floating], rate: int, command: Callable[[str, str], list[str]]) -> F64:
    """``samples`` written as 16-bit WAV, through the program ``command(input, output)`` builds, read back."""
    with tempfile.TemporaryDirectory() as scratch:
        source, target = str(Path(scratch) / "in.wav"), str(Path(scratch) / "out.wav")
        soundfile.write(source, np.clip(np.asarray(samples, dtype=np.float64), -1, 1), rate, subtype="PCM_16")
        _run(command(source, target))
        out, out_rate = soundfile.read(target, dtype="float64", always_2d=True)
    if out_rate != rate:
        raise RuntimeError(f"{command.__name__} wrote {out_rate} Hz, not {rate}")
    return np.asarray(out.mean(axis=1), dtype=np.float64)


def sox(*effect: str) -> Edit:
    """sox's effect chain ``effect`` (e.g. ``"pitch", "100"``; ``"speed", "0.9"``), the output at the input's rate
    (sox's own `rate` effect, which `speed` and `pitch` add)."""

    def edit(samples: npt.NDArray[np.floating], rate: int) -> F64:
        return _through(samples, rate, lambda a, b: ["sox", a, b, *effect, "rate", f"{rate}"])

    return edit


def rubberband(semitones: float, *, formant: bool = False) -> Edit:
    """The rubberband program's pitch shift by ``semitones`` (``-F``: formants kept)."""

    def edit(samples: npt.NDArray[np.floating], rate: int) -> F64:
        flags = ["-F"] if formant else []
        return _through(samples, rate, lambda a, b: ["rubberband", "-q", *flags, "-p", f"{semitones}", a, b])

    return edit


def ffmpeg_rubberband(semitones: float) -> Edit:
    """ffmpeg's `rubberband` filter (librubberband in the ffmpeg executable) shifting the pitch by ``semitones``."""

    def edit(samples: npt.NDArray[np.floating], rate: int) -> F64:
        ffmpeg = str(find_ffmpeg())
        chain = f"rubberband=pitch={2 ** (semitones / 12):.6f}"
        return _through(
            samples, rate, lambda a, b: [ffmpeg, "-v", "error", "-y", "-i", a, "-af", chain, "-ar", str(rate), b]
        )

    return edit


def praat_psola(semitones: float) -> Edit:
    """Praat's PSOLA (a Manipulation's pitch tier times 2^(semitones/12), resynthesised by overlap-add), by the
    praat program."""

    def edit(samples: npt.NDArray[np.floating], rate: int) -> F64:
        with tempfile.TemporaryDirectory() as scratch:
            script = Path(scratch) / "psola.praat"
            script.write_text(_PRAAT_SCRIPT)
            factor = f"{2 ** (semitones / 12):.6f}"
            return _through(
                samples, rate, lambda a, b: ["praat", "--run", "--no-pref-files", f"{script}", a, b, factor]
            )

    return edit


def librosa_pitch(semitones: float) -> Edit:
    """librosa's `effects.pitch_shift` (a phase vocoder, then a resampling), as a script calls it."""

    def edit(samples: npt.NDArray[np.floating], rate: int) -> F64:
        import librosa  # noqa: PLC0415 - a test and benchmark tool, imported where it is used

        shifted = librosa.effects.pitch_shift(np.asarray(samples, dtype=np.float32), sr=rate, n_steps=semitones)
        return _wav16(np.asarray(shifted, dtype=np.float64))

    return edit


def world(semitones: float = 0.0) -> Edit:
    """WORLD's analysis (DIO, StoneMask, CheapTrick, D4C) and resynthesis, the F0 times 2^(semitones/12): speech
    made again from its pitch, envelope and aperiodicity, as a vocoder does."""

    def edit(samples: npt.NDArray[np.floating], rate: int) -> F64:
        import pyworld  # noqa: PLC0415 - as librosa above

        x = np.ascontiguousarray(samples, dtype=np.float64)
        f0, times = pyworld.dio(x, rate)
        f0 = pyworld.stonemask(x, f0, times, rate)
        envelope = pyworld.cheaptrick(x, f0, times, rate)
        aperiodicity = pyworld.d4c(x, f0, times, rate)
        made = pyworld.synthesize(f0 * 2 ** (semitones / 12), envelope, aperiodicity, rate)
        return _wav16(np.asarray(made[: x.size], dtype=np.float64))

    return edit


def _wav16(samples: F64) -> F64:
    """``samples`` as a 16-bit WAV would keep them (clipped, rounded)."""
    return np.round(np.clip(samples, -1, 1) * 32767) / 32767


def cents(semitones: float) -> int:
    return round(100 * semitones)


def speed_cents(factor: float) -> float:
    """The pitch, in cents, a change of speed by ``factor`` moves speech by."""
    return 1200 * math.log2(factor)
