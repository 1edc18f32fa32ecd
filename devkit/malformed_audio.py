"""Malformed audio no encoder makes: float samples that are not numbers, formats no recording has, headers that
end too soon or claim gigabytes, and files with no audio at all. Built by hand, small (at most a second of audio),
so that a test can drive every one through every route that reads audio
(tests/integration/api/test_malformed_audio.py).

A float WAV may hold NaN or infinity; FLAC, MP3, Opus, Vorbis and AAC carry integers or decode to bounded
floats, and the one other container that could carry raw floats (Matroska's `A_PCM/FLOAT/IEEE`) is here too.
"""

from __future__ import annotations

import functools
import struct

import numpy as np
import numpy.typing as npt

from devkit.audio_corpus import encode, speech_mono

#: The rate of every file here that says a usable one.
RATE = 16000
#: Where a bad sample sits in a file that holds one: a reader is told the second.
BAD_SAMPLE_S = 0.5
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
# KSDATAFORMAT_SUBTYPE_IEEE_FLOAT after its first two bytes (the format tag), as WAVE_FORMAT_EXTENSIBLE names it.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def riff(*chunks: bytes) -> bytes:
    """A RIFF/WAVE file of ``chunks``, its RIFF size saying their length."""
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(chunk_id: bytes, body: bytes, *, size: int | None = None) -> bytes:
    """One RIFF chunk: its id, its size (``size`` when it lies, else the body's) and the body, word-aligned."""
    return chunk_id + struct.pack("<I", len(body) if size is None else size) + body + b"\x00" * (len(body) & 1)


def fmt(tag: int, channels: int, rate: int, bits: int) -> bytes:
    """A fmt chunk's 16 bytes: format tag, channels, rate, byte rate, block align, bits per sample."""
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)


@functools.cache
def _speech() -> npt.NDArray[np.float64]:
    return speech_mono(1.0, RATE)[:RATE].astype(np.float64)


def float_wav(value: float, *, bits: int = 32, extensible: bool = False, fmt_chunks: int = 1) -> bytes:
    """A second of speech as IEEE float samples of ``bits``, the one at ``BAD_SAMPLE_S`` set to ``value``; in a
    WAVE_FORMAT_EXTENSIBLE header, or with its fmt chunk given ``fmt_chunks`` times (which libsndfile refuses and
    ffmpeg reads)."""
    samples = _speech().copy()
    samples[int(BAD_SAMPLE_S * RATE)] = value
    header = fmt(_EXTENSIBLE if extensible else _FLOAT, 1, RATE, bits)
    if extensible:
        header += struct.pack("<HHIH", 22, bits, 0x4, _FLOAT) + _GUID_TAIL
    data = samples.astype("<f4" if bits == 32 else "<f8").tobytes()
    return riff(*[chunk(b"fmt ", header)] * fmt_chunks, chunk(b"data", data))


def pcm_wav(*, channels: int = 1, rate: int = RATE, seconds: float = 0.5) -> bytes:
    """``seconds`` of 16-bit silence (by the count of its bytes) under a header saying ``channels`` and ``rate``."""
    data = bytes(2 * max(channels, 1) * int(seconds * RATE))
    return riff(chunk(b"fmt ", fmt(_PCM, channels, rate, 16)), chunk(b"data", data))


def _non_finite() -> dict[str, bytes]:
    signal = _speech().astype(np.float32)
    signal[int(BAD_SAMPLE_S * RATE)] = np.nan
    return {
        "f32_nan.wav": float_wav(np.nan),
        "f32_pos_inf.wav": float_wav(np.inf),
        "f32_neg_inf.wav": float_wav(-np.inf),
        "f64_nan.wav": float_wav(np.nan, bits=64),
        "f64_pos_inf.wav": float_wav(np.inf, bits=64),
        "f64_neg_inf.wav": float_wav(-np.inf, bits=64),
        # Finite, but past float32's range: infinite once read as the pipeline reads every sample.
        "f64_past_float32.wav": float_wav(1e300, bits=64),
        "f32_nan_extensible.wav": float_wav(np.nan, extensible=True),
        "f32_nan_read_by_ffmpeg.wav": float_wav(np.nan, fmt_chunks=2),
        "f32_nan.mka": encode(signal, RATE, "matroska", "pcm_f32le"),
    }


def _impossible_formats() -> dict[str, bytes]:
    return {
        "zero_channels.wav": pcm_wav(channels=0),
        "rate_0.wav": pcm_wav(rate=0),
        "rate_1.wav": pcm_wav(rate=1),
        "rate_2147483647.wav": pcm_wav(rate=2**31 - 1),
    }


def _lying_headers() -> dict[str, bytes]:
    whole = pcm_wav(seconds=1.0)
    head = riff(chunk(b"fmt ", fmt(_PCM, 1, RATE, 16)))
    samples = bytes(RATE)  # half a second of 16-bit mono
    return {
        # Truncated: a data chunk saying a second, half of it there; a header cut inside its fmt chunk.
        "data_past_end.wav": whole[: len(whole) - RATE],
        "cut_in_fmt.wav": whole[: 12 + 8 + 7],
        # Sizes near 4 GiB, and a fmt chunk claiming 2 GiB.
        "data_size_near_4gib.wav": head + chunk(b"data", samples, size=0xFFFFFFF0),
        "list_size_near_4gib.wav": head + chunk(b"LIST", b"INFO", size=0xFFFFFFF0) + chunk(b"data", samples),
        "fmt_claims_gigabytes.wav": riff(chunk(b"fmt ", fmt(_PCM, 1, RATE, 16), size=2**31), chunk(b"data", samples)),
    }


def _no_audio() -> dict[str, bytes]:
    return {
        "empty": b"",
        "header_only.wav": riff(chunk(b"fmt ", fmt(_PCM, 1, RATE, 16)), chunk(b"data", b"")),
        "riff_only.wav": riff(),
    }


def malformed_audio() -> dict[str, bytes]:
    """Every malformed file by name (the extension is only a label: voicegate reads the bytes)."""
    return _non_finite() | _impossible_formats() | _lying_headers() | _no_audio()
