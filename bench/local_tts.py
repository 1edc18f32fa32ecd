"""Benchmark: the ``local`` engine (hibari + its adaptation) beside hibari alone, in one run.

    taskset -c 0 python bench/local_tts.py [--repeat 5] [--out-dir .voicegate/bench]

The bench pins itself to one core (the first it may use) when it was started on more. One table, a column
each for hibari alone (the stock voice, unadapted), the local engine (hibari, adapted in the model's own
parameters) and, for the choice between the two ways of adapting, hibari's audio adapted with WORLD the
way the engine did before (analysis at 10 ms, F0 mapped, envelope warped and tilted, resynthesis):

- RTF: CPU seconds per second of audio for a 20-word sentence, the median of ``--repeat`` runs;
- first chunk: wall-clock ms until the first audio of a one-sentence text; for the local engine through
  ``LocalProvider.stream`` on a one-thread CPU executor, everything loaded (the median of ``--repeat``);
- for a low (about 100 Hz) and a high (about 270 Hz) sample made with the ``espeak-ng`` executable, the
  output reading the sample's text: its median F0 against the sample's, in semitones, and its distance to
  the sample's spectral envelope (the mel-cepstral distance between the mean MFCCs, c1 to c12, of the
  voiced frames of each, in dB).

Targets: the local engine at RTF <= 0.05 on one core and a first chunk <= 150 ms; its median F0
within one semitone of each sample's; its envelope distance smaller than hibari alone's. With
``--out-dir`` the samples and every output are saved as WAV with a spectrogram (PNG) each, and one PNG per
sample stacks the sample, hibari alone, the local engine and hibari + WORLD, top to bottom.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyworld
import scipy.fft
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.cpu import CpuExecutor
from backend.providers.base import ProviderVoice, SampleRef
from backend.providers.local.engine import (
    MAX_ENVELOPE_GAIN_DB,
    OUTPUT_GAIN,
    adaptation,
    formant_ratio,
    render,
    voice_traits,
)
from backend.providers.local.hibari_voice import HibariVoice
from backend.providers.local.profile import (
    BAND_HZ,
    Signal,
    VoiceProfile,
    envelope_bands,
    pitch_stats,
    world_analysis,
)
from backend.providers.local.provider import LocalProvider
from backend.wav import float_to_wav, wav_to_float

SENTENCE = (
    "The quick brown fox jumps over the lazy dog while seven happy children sing cheerful songs about "
    "summer rain today."
)
#: bench/streaming.py's sentence: what a caller's first line might be.
ONE_SENTENCE = "Thanks for calling, how can I help you today?"
SAMPLE_TEXT = (
    "This is my own voice, recorded today for a short reference sample. I read a few plain sentences, slowly "
    "and clearly, so the system can learn how I sound."
)
#: espeak-ng voices and pitches whose median F0 is about 100 Hz and 270 Hz (measured: 99 and 272).
SAMPLES = {"low": ("en-us", 50), "high": ("en-us+f2", 85)}
TARGET_RTF = 0.05
TARGET_FIRST_CHUNK_MS = 150.0
WORLD_FRAME_MS = 10.0
COLUMNS = ("hibari alone", "local engine", "hibari + WORLD")

Speaker = Callable[[str, VoiceProfile], Signal]
Table = dict[str, dict[str, str]]  # column -> metric -> figure


def espeak_sample(voice: str, pitch: int) -> bytes:
    """``SAMPLE_TEXT`` read by the espeak-ng executable (a separate GPL program, never loaded in-process)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "150", "-w", str(path), SAMPLE_TEXT], check=True
        )
        return path.read_bytes()


def median_f0(x: Signal, rate: int) -> float:
    """Median F0 (Hz) of the voiced frames, as enrolment measures it."""
    return pitch_stats(world_analysis(x, rate, with_aperiodicity=False).f0)[0]


def mfcc_voiced(x: Signal, rate: int) -> Signal:
    """MFCCs c1..c12 of the voiced 25 ms frames (every 10 ms, 40 mel bands to 8 kHz) of ``x`` at 16 kHz."""
    common = math.gcd(rate, 16000)
    y = resample_poly(x, 16000 // common, rate // common)
    width, hop, n_fft = 400, 160, 512
    frames = np.lib.stride_tricks.sliding_window_view(y, width)[::hop] * np.hamming(width)
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2

    def mel(f: Signal) -> Signal:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = 700.0 * (10 ** (np.linspace(0.0, mel(np.array(8000.0)), 42) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1 / 16000)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:, None] - edges[1:-1, None])
    bank = np.maximum(0.0, np.minimum(rising, falling))
    cepstra = scipy.fft.dct(np.log(power @ bank.T + 1e-10), type=2, norm="ortho", axis=1)[:, 1:13]
    f0, _ = pyworld.dio(y, 16000, f0_floor=60.0, f0_ceil=700.0, frame_period=10.0)
    count = min(len(cepstra), len(f0))
    return np.asarray(cepstra[:count][f0[:count] > 0])


def envelope_distance(x: Signal, rate: int, sample: Signal) -> float:
    """Mel-cepstral distance (dB) between the mean voiced MFCCs of ``x`` and of the sample's (``sample``)."""
    diff = mfcc_voiced(x, rate).mean(axis=0) - sample.mean(axis=0)
    return float(10.0 / math.log(10.0) * math.sqrt(2.0 * float(np.sum(diff**2))))


def world_adapted(text: str, profile: VoiceProfile) -> Signal:
    """hibari's audio, at the engine's pace, adapted with WORLD as the engine was before: the F0 contour
    mapped onto the profile's median and spread, the envelope warped by the same formant ratio and tilted
    towards the sample's within the same limit, resynthesised."""
    voice = HibariVoice.shared()
    traits = voice_traits(voice)
    plan = adaptation(profile, traits)
    rate = voice.sample_rate
    x = voice.speak(text, plan.speed).astype(np.float64) * OUTPUT_GAIN
    analysis = world_analysis(x, rate, with_aperiodicity=True, frame_period_ms=WORLD_FRAME_MS, dio_speed=2)
    assert analysis.ap is not None
    f0 = analysis.f0.copy()
    voiced = f0 > 0
    median, spread = pitch_stats(f0)
    scale = plan.pitch_scale if spread <= 0 else float(np.clip(profile.f0_sd_semitones / spread, 0.5, 2.0))
    f0[voiced] = profile.median_f0_hz * np.power(f0[voiced] / median, scale)
    freqs = np.linspace(0.0, rate / 2.0, analysis.sp.shape[1])
    ratio = formant_ratio(profile, traits)
    warped = np.stack([np.interp(freqs / ratio, freqs, frame) for frame in analysis.sp])
    source = np.asarray(envelope_bands(warped, analysis.f0, rate))
    gain_db = np.clip(np.asarray(profile.envelope_db) - source, -MAX_ENVELOPE_GAIN_DB, MAX_ENVELOPE_GAIN_DB)
    sp = np.ascontiguousarray(warped * np.power(10.0, np.interp(freqs, np.asarray(BAND_HZ), gain_db) / 10.0))
    y = pyworld.synthesize(f0, sp, analysis.ap, rate, WORLD_FRAME_MS)
    peak = float(np.max(np.abs(y)))
    return np.asarray(y * min(1.0, 0.95 / peak))


def speakers() -> dict[str, Speaker]:
    """Each column's text-and-profile to samples at the voice's rate."""
    voice = HibariVoice.shared()
    return {
        "hibari alone": lambda text, _: voice.speak(text).astype(np.float64) * OUTPUT_GAIN,
        "local engine": lambda text, profile: render(text, profile, voice=voice)[0],
        "hibari + WORLD": world_adapted,
    }


def rtf(speak: Speaker, profile: VoiceProfile, repeat: int) -> float:
    """Median CPU seconds per second of audio for ``SENTENCE``."""
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        audio = speak(SENTENCE, profile)
        runs.append((time.process_time() - started) / (len(audio) / HibariVoice.sample_rate))
    return statistics.median(runs)


def first_chunk_ms(speak: Speaker, profile: VoiceProfile, repeat: int) -> float:
    """Median wall-clock ms to the whole of ``ONE_SENTENCE`` (it is one phrase: its first chunk)."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        speak(ONE_SENTENCE, profile)
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


async def streamed_first_chunk_ms(sample: bytes, repeat: int) -> float:
    """Median wall-clock ms from asking ``LocalProvider.stream`` for ``ONE_SENTENCE`` to its first chunk."""
    ref = SampleRef(data=sample, mime_type="audio/wav", channels=1)
    async with CpuExecutor(1) as cpu:
        provider = LocalProvider(cpu=cpu)
        voice: ProviderVoice = await provider.enrol([ref], name="bench", language="en", transcript=None, key="b")
        runs = []
        for _ in range(repeat + 1):  # the first loads the voice and reads its traits
            started = time.perf_counter()
            async for _chunk in provider.stream(voice, ONE_SENTENCE):
                runs.append((time.perf_counter() - started) * 1000)
                break
    return statistics.median(runs[1:])


def spectrogram_png(x: Signal, rate: int, *, top_hz: float = 5000.0, height: int = 400) -> tuple[int, int, bytes]:
    """A log-magnitude spectrogram to ``top_hz`` (10 ms a column, 70 dB of range) as RGB rows."""
    n_fft, hop = 1024, rate // 100
    padded = np.pad(x, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * np.hanning(n_fft)
    db = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)) + 1e-9)
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    rows = np.linspace(top_hz, 0.0, height)
    image = np.stack([np.interp(rows, freqs, column) for column in db], axis=1)
    level = np.clip((image - (image.max() - 70.0)) / 70.0, 0.0, 1.0)
    # black -> purple -> orange -> pale yellow, roughly the 'inferno' map
    stops = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=float)
    position = level * (len(stops) - 1)
    low = np.minimum(position.astype(int), len(stops) - 2)
    frac = (position - low)[..., None]
    rgb = (stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)
    return rgb.shape[1], rgb.shape[0], rgb.tobytes()


def write_png(path: Path, images: list[tuple[int, int, bytes]]) -> None:
    """Write ``images`` (RGB rows) stacked top to bottom, 6 white rows between, as one PNG."""
    width = max(w for w, _, _ in images)
    rows: list[bytes] = []
    for index, (w, h, data) in enumerate(images):
        if index:
            rows.extend([b"\xff" * (3 * width)] * 6)
        rows.extend(data[r * 3 * w : (r + 1) * 3 * w] + b"\x00" * (3 * (width - w)) for r in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    )
    path.chmod(0o644)


def enrolled(samples: dict[str, bytes]) -> dict[str, VoiceProfile]:
    """Each sample's profile, as ``LocalProvider.enrol`` stores it."""

    async def enrol(name: str, data: bytes) -> VoiceProfile:
        ref = SampleRef(data=data, mime_type="audio/wav", channels=1)
        async with CpuExecutor(1) as cpu:
            voice = await LocalProvider(cpu=cpu).enrol([ref], name=name, language="en", transcript=None, key=name)
        return VoiceProfile(**voice.metadata["profile"])

    return {name: asyncio.run(enrol(name, data)) for name, data in samples.items()}


def speed_rows(table: Table, samples: dict[str, bytes], profile: VoiceProfile, repeat: int) -> None:
    """RTF and first chunk, per column, for the low sample's voice."""
    for column, fn in speakers().items():
        fn(ONE_SENTENCE, profile)  # warm: onnxruntime sizes its buffers on the first run
        table[column]["RTF, 20-word sentence, 1 core"] = f"{rtf(fn, profile, repeat):.4f}"
        table[column]["first chunk, one sentence (ms)"] = f"{first_chunk_ms(fn, profile, repeat):.0f}"
    streamed = asyncio.run(streamed_first_chunk_ms(samples["low"], repeat))
    table["local engine"]["first chunk, one sentence (ms)"] = f"{streamed:.0f} (stream)"


def closeness_rows(
    table: Table, samples: dict[str, bytes], profiles: dict[str, VoiceProfile], out_dir: Path | None
) -> None:
    """F0 and envelope closeness to each sample, per column; the audio and spectrograms saved in ``out_dir``."""
    rate = HibariVoice.sample_rate
    for name, data in samples.items():
        x, sample_rate = wav_to_float(data)
        sample_f0, sample_mfcc = median_f0(x, sample_rate), mfcc_voiced(x, sample_rate)
        images = [spectrogram_png(x, sample_rate)]
        for column, fn in speakers().items():
            y = fn(SAMPLE_TEXT, profiles[name])
            semitones = 12 * math.log2(median_f0(y, rate) / sample_f0)
            table[column][f"{name} ({sample_f0:.0f} Hz): F0 off by (semitones)"] = f"{semitones:+.2f}"
            distance = envelope_distance(y, rate, sample_mfcc)
            table[column][f"{name}: envelope distance to the sample (dB)"] = f"{distance:.1f}"
            images.append(spectrogram_png(y, rate))
            if out_dir:
                stem = f"{name}_{column.replace(' + ', '_').replace(' ', '_')}"
                (out_dir / f"{stem}.wav").write_bytes(float_to_wav(y, rate))
                write_png(out_dir / f"{stem}.png", images[-1:])
        if out_dir:
            (out_dir / f"sample_{name}.wav").write_bytes(data)
            write_png(out_dir / f"sample_{name}.png", images[:1])
            write_png(out_dir / f"compare_{name}.png", images)


def main() -> None:
    """Measure each column, print the table with the targets, and save the audio and spectrograms."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out-dir", type=Path)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:1])
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    voice = HibariVoice.shared()
    load_s = time.perf_counter() - started
    started = time.process_time()
    traits = voice_traits(voice)
    traits_s = time.process_time() - started
    samples = {name: espeak_sample(*how) for name, how in SAMPLES.items()}
    profiles = enrolled(samples)
    table: Table = {column: {} for column in COLUMNS}
    speed_rows(table, samples, profiles["low"], args.repeat)
    closeness_rows(table, samples, profiles, args.out_dir)

    print(f"pinned to core {cores[0]}; median of {args.repeat} runs; samples by espeak-ng, read back by each column")
    print(f"{'':48}" + "".join(f"{c:>18}" for c in COLUMNS))
    for metric in table["local engine"]:
        print(f"{metric:48}" + "".join(f"{table[c][metric]:>18}" for c in COLUMNS))
    print(
        f"targets: local engine RTF <= {TARGET_RTF}, first chunk <= {TARGET_FIRST_CHUNK_MS:.0f} ms, F0 within 1 "
        "semitone, envelope distance below hibari alone's"
    )
    ratios = ", ".join(
        f"{n} {formant_ratio(p, traits):.3f} (speed {adaptation(p, traits).speed:.2f})" for n, p in profiles.items()
    )
    print(
        f"voice: load {load_s:.2f} s, its traits read in {traits_s:.2f} CPU s (once per process): median F0 "
        f"{traits.median_f0_hz:.0f} Hz, formants {traits.formants_hz}; formant ratios {ratios}"
    )
    if args.out_dir:
        print(f"saved in {args.out_dir}: WAVs, spectrograms; compare_*.png: the sample, then {', '.join(COLUMNS)}")


if __name__ == "__main__":
    main()
