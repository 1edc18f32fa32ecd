"""Benchmark: the audio pipeline (decode, analyse, preprocess) on 30 s of 48 kHz speech, beside FFmpeg's
``loudnorm`` doing loudness normalisation alone on the same file, measured in the same run.

    python bench/audio.py [--repeat 5] [--seconds 30]

The input is espeak-ng speech with 1 s of room tone either side and light background noise (30 dB
SNR), as a 16-bit mono WAV and as WebM/Opus (what browsers record). The baseline runs FFmpeg's
``loudnorm`` (single pass, dynamic mode) with the ffmpeg executable voicegate decodes with (Debian's, else
imageio-ffmpeg's), fed the same bytes on stdin: ``ffmpeg -i - -af loudnorm=I=-20:TP=-1:LRA=11 -f null -``.

Target: analysis + preprocessing at least 20x faster than real time on this 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.audio.decode import decode_audio  # noqa: E402 - after the path setup above
from backend.audio.ffmpeg import find_ffmpeg  # noqa: E402
from backend.audio.measure import measure  # noqa: E402
from backend.audio.pipeline import prepare_sample  # noqa: E402
from backend.audio.process import preprocess  # noqa: E402
from devkit.audio_corpus import RATE, encode, noise, recording, rms, speech_mono, wav_bytes  # noqa: E402

TARGET_X_REALTIME = 20.0
TARGET_RATE = 24000  # Qwen's preferred rate


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of each of ``repeat`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def make_input(seconds: float) -> tuple[bytes, bytes, float]:
    """The take as WAV and as WebM/Opus, and its length in seconds."""
    voice = speech_mono(seconds - 2.0)[: int((seconds - 2.0) * RATE)]
    take = recording(voice)
    take = take + noise(take.size / RATE, rms(voice) / 10 ** (30 / 20), seed=11)
    return wav_bytes(take), encode(take, RATE, "webm", "libopus", bit_rate=48000), take.size / RATE


def pipeline(data: bytes) -> None:
    """What the backend does with an upload: decode, analyse, validate, preprocess to a WAV."""
    prepare_sample(data, target_sample_rate=TARGET_RATE, max_duration_s=60.0)


def loudnorm(data: bytes, ffmpeg: Path) -> None:
    """The ffmpeg executable decoding ``data`` (on stdin) and loudness-normalising it, back to 48 kHz, output
    discarded."""
    loudnorm_args = ["-af", "loudnorm=I=-20:TP=-1:LRA=11", "-ar", str(RATE), "-f", "null", "-"]
    subprocess.run(
        [str(ffmpeg), "-v", "error", "-i", "pipe:0", *loudnorm_args],
        input=data,
        check=True,
    )


def stages(data: bytes, repeat: int) -> dict[str, float]:
    """Median seconds of each pipeline stage (where the time goes)."""
    decoded = decode_audio(data)
    measured = measure(decoded)
    return {
        "decode": statistics.median(timed(lambda: decode_audio(data), repeat)),
        "analyse (VAD, LUFS, peaks, SNR)": statistics.median(timed(lambda: measure(decoded), repeat)),
        "preprocess (trim, resample, denoise, normalise)": statistics.median(
            timed(lambda: preprocess(measured, TARGET_RATE), repeat)
        ),
    }


def main() -> None:
    """Print the pipeline's figures next to the loudnorm baseline."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    wav, webm, seconds = make_input(args.seconds)
    ffmpeg = find_ffmpeg()
    rows: dict[str, list[float]] = {
        "pipeline, WAV in": timed(lambda: pipeline(wav), args.repeat),
        "pipeline, WebM/Opus in": timed(lambda: pipeline(webm), args.repeat),
        "loudnorm only (ffmpeg executable), WAV in": timed(lambda: loudnorm(wav, ffmpeg), args.repeat),
        "loudnorm only (ffmpeg executable), WebM in": timed(lambda: loudnorm(webm, ffmpeg), args.repeat),
    }
    print(
        f"input: {seconds:.1f} s of 48 kHz mono speech, output {TARGET_RATE} Hz; {args.repeat} runs each, one process"
    )
    print(f"ffmpeg: {ffmpeg}")
    print(f"{'what':46}{'best s':>9}{'median s':>10}{'s per s':>10}{'x realtime':>12}")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:46}{min(times):9.3f}{median:10.3f}{median / seconds:10.4f}{seconds / median:12.1f}")
    print("where the pipeline's time goes (WAV in, median s):")
    for name, spent in stages(wav, args.repeat).items():
        print(f"  {name:48}{spent:8.3f}")
    worst = seconds / max(
        statistics.median(rows["pipeline, WAV in"]), statistics.median(rows["pipeline, WebM/Opus in"])
    )
    verdict = "meets" if worst >= TARGET_X_REALTIME else "MISSES"
    print(f"target >= {TARGET_X_REALTIME:.0f}x realtime for analysis + preprocessing: {verdict} (worst {worst:.1f}x)")


if __name__ == "__main__":
    main()
