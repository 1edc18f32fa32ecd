"""Minimal 16-bit PCM WAV encoding and decoding (the only container the adapters build or read)."""

from __future__ import annotations

import io
import wave

import numpy as np
import numpy.typing as npt


def pcm16_to_wav(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap raw little-endian 16-bit PCM in a WAV header."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def float_to_wav(samples: npt.NDArray[np.float64], sample_rate: int) -> bytes:
    """Encode mono float samples in [-1, 1] as 16-bit PCM WAV."""
    clipped = np.clip(samples, -1.0, 1.0)
    return pcm16_to_wav((clipped * 32767.0).astype("<i2").tobytes(), sample_rate)


def wav_to_float(data: bytes) -> tuple[npt.NDArray[np.float64], int]:
    """Decode a 16-bit PCM WAV to mono float64 samples in [-1, 1] and its sample rate.

    Raises ``ValueError`` for anything that is not 16-bit PCM WAV.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as src:
            width, channels, rate = src.getsampwidth(), src.getnchannels(), src.getframerate()
            frames = src.readframes(src.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file: {exc}") from exc
    if width != 2:
        raise ValueError("only 16-bit PCM WAV is supported")
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return pcm, rate
