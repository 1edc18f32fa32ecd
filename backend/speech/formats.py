"""The formats speech streams in, all made from the providers' 24 kHz 16-bit mono PCM as it arrives: the PCM
itself, a WAV (a header for a stream of unknown length, then the PCM) or MP3 (encoded frame by frame).
"""

from __future__ import annotations

import struct
from typing import Final, Literal, get_args

import av
import numpy as np
import numpy.typing as npt

from backend.providers.base import STREAM_SAMPLE_RATE

SpeechFormat = Literal["pcm_24000", "wav", "mp3"]
"""What a client may ask a speech route for."""
SPEECH_FORMATS: Final[tuple[str, ...]] = get_args(SpeechFormat)
MEDIA_TYPES: Final[dict[str, str]] = {
    "pcm_24000": f"audio/pcm;rate={STREAM_SAMPLE_RATE};channels=1;encoding=s16le",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
}
#: MP3 at 64 kbit/s: plenty for 24 kHz mono speech.
MP3_BIT_RATE: Final = 64000
#: A WAV's sizes when its length is not known as it starts (the largest a RIFF can say).
_UNKNOWN_SIZE: Final = 0xFFFFFFFF


def streaming_wav_header(sample_rate: int = STREAM_SAMPLE_RATE) -> bytes:
    """The 44-byte header of a 16-bit mono PCM WAV whose length is unknown: RIFF and data sizes at their
    maximum, which readers treat as "until the end of the stream"."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF"
        + struct.pack("<I", _UNKNOWN_SIZE)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, 2, 16)
        + b"data"
        + struct.pack("<I", _UNKNOWN_SIZE)
    )


class StreamEncoder:
    """Turns PCM chunks (of any length: a chunk may end inside a sample) into the requested format's bytes,
    counting the samples it was given."""

    def __init__(self, fmt: SpeechFormat) -> None:
        self.format = fmt
        self.samples = 0
        self._carry = b""
        self._header = streaming_wav_header() if fmt == "wav" else b""
        self._mp3 = _mp3_encoder() if fmt == "mp3" else None

    @property
    def seconds(self) -> float:
        """How much audio has been fed."""
        return self.samples / STREAM_SAMPLE_RATE

    def feed(self, pcm: bytes) -> bytes:
        """The bytes to send for this chunk (possibly none yet: MP3 waits for a whole frame)."""
        data = self._carry + pcm
        whole = len(data) - len(data) % 2
        data, self._carry = data[:whole], data[whole:]
        self.samples += whole // 2
        if self._mp3 is None:
            out, self._header = self._header + data, b""
            return out
        return self._encode(np.frombuffer(data, dtype="<i2")) if data else b""

    def silence(self, seconds: float) -> bytes:
        """``seconds`` of silence, as ``feed`` would send it."""
        return self.feed(bytes(2 * round(seconds * STREAM_SAMPLE_RATE)))

    def finish(self) -> bytes:
        """What is left to send once the PCM has ended (the header of an empty WAV, MP3's last frames)."""
        if self._mp3 is None:
            out, self._header = self._header, b""
            return out
        return b"".join(bytes(packet) for packet in self._mp3.encode(None))

    def _encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        assert self._mp3 is not None  # noqa: S101 - only called for MP3
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16p", layout="mono")
        frame.sample_rate = STREAM_SAMPLE_RATE
        frame.pts = self.samples - samples.size
        return b"".join(bytes(packet) for packet in self._mp3.encode(frame))


def _mp3_encoder() -> av.AudioCodecContext:
    codec = av.CodecContext.create("libmp3lame", "w")
    assert isinstance(codec, av.AudioCodecContext)  # noqa: S101 - an audio codec by name
    codec.sample_rate = STREAM_SAMPLE_RATE
    codec.layout = "mono"
    codec.format = "s16p"
    codec.bit_rate = MP3_BIT_RATE
    return codec
