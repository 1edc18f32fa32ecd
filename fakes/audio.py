"""Tiny audio helpers for the fakes: make a tone WAV, encode PCM as MP3, inspect an uploaded WAV."""

from __future__ import annotations

import functools
import io
import math
import struct
import wave
from dataclasses import dataclass

import numpy as np
import soundfile


@dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    duration_s: float
    peak: int


@functools.cache
def tone_pcm(seconds: float, rate: int, freq: float = 220.0) -> bytes:
    """16-bit mono PCM of a sine tone (what the fakes "synthesize"); kept, so a fake answering many requests at
    once spends its time where a real provider would, waiting, not computing sines."""
    count = max(1, int(seconds * rate))
    return struct.pack(f"<{count}h", *(int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count)))


def tone_wav(seconds: float, rate: int, freq: float = 220.0) -> bytes:
    return pcm_wav(tone_pcm(seconds, rate, freq), rate)


def mp3_of(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM as an MP3 file (libsndfile's LAME)."""
    buffer = io.BytesIO()
    samples = np.frombuffer(pcm, dtype="<i2")
    soundfile.write(buffer, samples, rate, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()


def pcm_wav(pcm: bytes, rate: int) -> bytes:
    """16-bit mono PCM in a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def wav_info(data: bytes) -> WavInfo:
    """Inspect a 16-bit WAV; raises ``ValueError`` when it cannot be decoded."""
    try:
        with wave.open(io.BytesIO(data), "rb") as src:
            rate, channels, frames = src.getframerate(), src.getnchannels(), src.getnframes()
            raw = src.readframes(frames)
            width = src.getsampwidth()
    except (wave.Error, EOFError) as exc:
        raise ValueError(str(exc)) from exc
    if width != 2 or rate <= 0:
        raise ValueError("unsupported WAV encoding")
    samples = struct.unpack(f"<{len(raw) // 2}h", raw[: len(raw) // 2 * 2])
    return WavInfo(rate, channels, frames / rate, max((abs(s) for s in samples), default=0))
