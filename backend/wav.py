"""Minimal WAV encoding and decoding (the only container the adapters build or read): 16-bit PCM out, and
16-bit or 32-bit float in (what speech servers answer)."""

from __future__ import annotations

import io
import struct
import wave
from typing import Final, NamedTuple

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


#: WAVE format tags: integer PCM, IEEE float, and the extensible header that names one of them in its GUID.
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
#: Chunks before the samples (``fmt``, ``fact``, ``LIST``, ``PEAK``...) take a few hundred bytes; a header
#: longer than this is not one a speech server wrote.
MAX_WAV_HEADER: Final = 64 * 1024


class WavFormat(NamedTuple):
    """What a WAV header says of its samples, and the offset of the first one."""

    encoding: str  # "pcm16" or "float32"
    channels: int
    sample_rate: int
    data_offset: int
    #: The data chunk's declared size: a streamed WAV, whose length is unknown, declares the largest.
    data_size: int


def wav_format(head: bytes) -> WavFormat | None:
    """Parse the header at the start of a WAV: None while ``head`` ends before the first sample.

    Raises ``ValueError`` for anything but a RIFF/WAVE of 16-bit integer or 32-bit float samples. Sizes
    are not checked against the bytes that follow: a WAV streamed as it is made declares a size it cannot
    know yet.
    """
    if len(head) < 12:
        if not (b"RIFF".startswith(head[:4]) and b"WAVE".startswith(head[8:])):
            raise ValueError("not a RIFF/WAVE answer")
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE answer")
    fmt: tuple[str, int, int] | None = None
    offset = 12
    while offset + 8 <= min(len(head), MAX_WAV_HEADER):
        chunk, size = head[offset : offset + 4], struct.unpack_from("<I", head, offset + 4)[0]
        if chunk == b"data":
            if fmt is None:
                raise ValueError("the WAV's samples come before its format")
            return WavFormat(*fmt, data_offset=offset + 8, data_size=size)
        if offset + 8 + size > MAX_WAV_HEADER:
            raise ValueError("the WAV header does not end")
        body = head[offset + 8 : offset + 8 + size]
        if len(body) < size:
            return None
        if chunk == b"fmt ":
            fmt = _sample_format(body)
        offset += 8 + size + (size & 1)  # chunks are word-aligned
    if offset + 8 > MAX_WAV_HEADER:
        raise ValueError("the WAV header does not end")
    return None


def _sample_format(body: bytes) -> tuple[str, int, int]:
    if len(body) < 16:
        raise ValueError("the WAV's fmt chunk is truncated")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]  # the first two bytes of the sub-format GUID
    encoding = {(_PCM, 16): "pcm16", (_FLOAT, 32): "float32"}.get((tag, bits))
    if encoding is None or channels < 1 or rate < 1:
        raise ValueError(f"unsupported WAV samples (format {tag}, {bits} bits, {channels} channels, {rate} Hz)")
    return encoding, channels, rate


def wav_to_pcm16(data: bytes) -> tuple[bytes, int]:
    """A whole WAV of 16-bit or 32-bit float samples as 16-bit mono PCM, and its rate (``ValueError``
    when it is neither)."""
    found = wav_format(data)
    if found is None:
        raise ValueError("the WAV ends inside its header")
    width = 2 if found.encoding == "pcm16" else 4
    frame = width * found.channels
    samples = data[found.data_offset : found.data_offset + found.data_size]
    samples = samples[: len(samples) // frame * frame]
    if found.encoding == "pcm16" and found.channels == 1:
        return samples, found.sample_rate
    if found.encoding == "pcm16":
        signal = np.frombuffer(samples, dtype="<i2").astype(np.float64)
    else:
        signal = np.clip(np.frombuffer(samples, dtype="<f4").astype(np.float64), -1.0, 1.0) * 32767.0
    mono = signal.reshape(-1, found.channels).mean(axis=1)
    return np.round(mono).astype("<i2").tobytes(), found.sample_rate


def with_comment(wav: bytes, comment: str) -> bytes:
    """The RIFF/WAVE with a LIST/INFO `ICMT` chunk holding `comment` appended: the same audio in other
    bytes. Anything that is not a RIFF/WAVE is returned as it is."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        return wav
    text = comment.encode("ascii", "replace") + b"\x00"
    text += b"\x00" * (len(text) & 1)  # chunks are word-aligned
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
    body = wav[12:] + b"\x00" * (len(wav) & 1) + b"LIST" + struct.pack("<I", len(info)) + info
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
