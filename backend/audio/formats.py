"""The formats speech streams in, all made from the providers' 24 kHz 16-bit mono PCM as it arrives: the PCM
itself, a WAV (a header for a stream of unknown length, then the PCM) or MP3 (encoded frame by frame, in
process by libsndfile's LAME).
"""

from __future__ import annotations

import io
import struct
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import soundfile

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
# libsndfile sets a constant MP3 bitrate from a "compression level" c: at 24 kHz (MPEG-2) int(160 - 152 c)
# kbit/s (its mpeg_l3_encode.c). Aiming half a kbit/s above keeps the truncation on MP3_BIT_RATE.
_MP3_COMPRESSION: Final = (160 - (MP3_BIT_RATE / 1000 + 0.5)) / 152
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
        self._mp3 = _Mp3Encoder() if fmt == "mp3" else None

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
        return self._mp3.encode(np.frombuffer(data, dtype="<i2")) if data else b""

    def silence(self, seconds: float) -> bytes:
        """``seconds`` of silence, as ``feed`` would send it."""
        return self.feed(bytes(2 * round(seconds * STREAM_SAMPLE_RATE)))

    def finish(self) -> bytes:
        """What is left to send once the PCM has ended (the header of an empty WAV, MP3's last frames)."""
        if self._mp3 is None:
            out, self._header = self._header, b""
            return out
        return self._mp3.finish()


class _Mp3Encoder:
    """libsndfile writing 24 kHz mono MP3 at MP3_BIT_RATE, constant, into a `_Sent` as the samples come."""

    def __init__(self) -> None:
        self._out = _Sent()
        self._file = soundfile.SoundFile(
            self._out,
            mode="w",
            samplerate=STREAM_SAMPLE_RATE,
            channels=1,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=_MP3_COMPRESSION,
            bitrate_mode="CONSTANT",
        )

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """The whole frames these samples complete."""
        self._file.write(samples)
        return self._out.take()

    def finish(self) -> bytes:
        """The last frames (the encoder's buffered samples, padded)."""
        self._file.close()
        return self._out.take()


class _Sent:
    """The file libsndfile writes an MP3 stream to: appended bytes wait in it until `take`n and sent.

    libsndfile reserves the first frame for a LAME tag it writes back on close, when that frame has long been
    sent: the write back is dropped, and the frame stays the silent one it was (24 ms, which players play)."""

    def __init__(self) -> None:
        self._unsent = bytearray()
        self._length = 0
        self._position = 0

    def write(self, data: bytes) -> int:
        """Append ``data``, or drop it when it would overwrite bytes already written."""
        if self._position == self._length:
            self._unsent += data
            self._length += len(data)
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the write position (libsndfile seeks to find the length, and to write back)."""
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = start + offset
        return self._position

    def tell(self) -> int:
        """The write position."""
        return self._position

    def take(self) -> bytes:
        """The bytes appended since the last call."""
        out = bytes(self._unsent)
        self._unsent.clear()
        return out
