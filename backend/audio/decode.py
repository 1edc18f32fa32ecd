"""Bounded decoding: the container comes from the bytes, and no file decodes to more than its limits allow.

Two bounds apply to every file, both checked against what the container claims before anything is
decoded and again against the samples actually decoded, so a lying header cannot slip past either:

* the duration limit (the caller's maximum, or ``MAX_DECODE_S``) refuses a sample that is too long;
* the size bound refuses audio longer than its byte count can honestly hold at ``MIN_BITRATE_BPS``
  (a compression bomb, or a header claiming hours).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Final

import av
import av.error
import numpy as np
import numpy.typing as npt

from backend.audio.errors import AudioTooLongForSize, SampleTooLong, UnsupportedOrCorruptAudio
from backend.audio.sniff import SNIFF_BYTES, sniff_audio

#: Hard cap on decoded audio when the caller names no maximum (every provider's limit is below it).
MAX_DECODE_S: Final = 300.0
#: The leanest real recordings (Opus at its 6 kbit/s floor; FLAC or Opus of near-silence at ~2 kbit/s)
#: average well above this; a file that claims or decodes to more audio than this allows is refused.
MIN_BITRATE_BPS: Final = 400
#: Slack over a duration limit for encoder padding and rounding in container durations.
DURATION_TOLERANCE_S: Final = 0.5
MIN_SAMPLE_RATE: Final = 8000
#: Voice is recorded at 96 kHz at most; higher rates would only multiply the memory a sample takes.
MAX_SAMPLE_RATE: Final = 96000

# Sniffed container -> (FFmpeg demuxer forced for it, codecs accepted inside it). Forcing the demuxer
# means FFmpeg never probes untrusted bytes into some other format (playlists, concat lists, ...).
_CONTAINERS: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "audio/wav": ("wav", frozenset()),  # any pcm_* codec, checked by prefix
    "audio/flac": ("flac", frozenset({"flac"})),
    "audio/ogg": ("ogg", frozenset({"opus", "vorbis", "flac"})),
    "audio/webm": ("matroska", frozenset({"opus", "vorbis"})),
    "audio/mp4": ("mp4", frozenset({"aac", "alac"})),
    "audio/mpeg": ("mp3", frozenset({"mp3", "mp3float"})),
}
_NOT_AUDIO: Final = "unsupported or corrupt audio: not a WAV, MP3, FLAC, OGG, WebM or M4A audio file"
# WAV data sizes that streaming writers leave when they cannot seek back: the length is unknown.
_WAV_UNKNOWN_SIZES: Final = frozenset({0, 0xFFFFFFFF})


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """A whole sample as float32 in [-1, 1], shape (channels, frames); more than two channels are folded to stereo."""

    samples: npt.NDArray[np.float32]
    sample_rate: int
    channels: int
    mime_type: str
    codec: str

    @property
    def duration_s(self) -> float:
        """Decoded length in seconds."""
        return float(self.samples.shape[1] / self.sample_rate)


def decode_audio(data: bytes, *, max_duration_s: float | None = None) -> DecodedAudio:
    """Decode ``data`` after sniffing its real container; raises ``AudioRejected`` subclasses.

    ``max_duration_s`` (default ``MAX_DECODE_S``) bounds the decode: a longer claim is refused before
    decoding, and decoding stops as soon as the samples pass it.
    """
    mime = sniff_audio(data[:SNIFF_BYTES])
    if mime is None:
        raise UnsupportedOrCorruptAudio(_NOT_AUDIO)
    limit_s = (MAX_DECODE_S if max_duration_s is None else max_duration_s) + DURATION_TOLERANCE_S
    size_limit_s = len(data) * 8 / MIN_BITRATE_BPS
    if mime == "audio/wav":
        _check_wav_claim(data, limit_s)
    demuxer, codecs = _CONTAINERS[mime]
    try:
        # Tags are not ours to judge: a Latin-1 title must not fail the upload.
        with av.open(io.BytesIO(data), mode="r", format=demuxer, metadata_errors="replace") as container:
            stream = _audio_stream(container, mime, codecs)
            claimed_s = container.duration / av.time_base if container.duration else None
            if claimed_s is not None:
                _check_length(claimed_s, 0.0, limit_s, size_limit_s, claimed=True)
            samples = _decode_bounded(container, stream, limit_s, size_limit_s)
            codec = stream.codec_context.name
            channels = stream.codec_context.channels
            rate = stream.codec_context.sample_rate
    except av.error.FFmpegError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UnsupportedOrCorruptAudio("unsupported or corrupt audio", facts={"reason": reason}) from exc
    if samples.shape[1] == 0:
        raise UnsupportedOrCorruptAudio("unsupported or corrupt audio: no audio could be decoded")
    return DecodedAudio(samples=samples, sample_rate=rate, channels=channels, mime_type=mime, codec=codec)


def _audio_stream(container: av.container.InputContainer, mime: str, codecs: frozenset[str]) -> av.AudioStream:
    """The one audio stream to decode; files carrying video (other than cover art) are not samples."""
    for video in container.streams.video:
        if not video.disposition & av.stream.Disposition.attached_pic:
            raise UnsupportedOrCorruptAudio("unsupported or corrupt audio: the file contains video")
    if not container.streams.audio:
        raise UnsupportedOrCorruptAudio("unsupported or corrupt audio: the file has no audio track")
    stream = container.streams.audio[0]
    codec = stream.codec_context.name
    accepted = codec.startswith("pcm_") if mime == "audio/wav" else codec in codecs
    if not accepted:
        raise UnsupportedOrCorruptAudio(f"unsupported or corrupt audio: codec {codec} is not accepted in {mime}")
    rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE or channels < 1:
        raise UnsupportedOrCorruptAudio(
            f"unsupported or corrupt audio: {rate} Hz, {channels} channel(s) "
            f"(sample rates {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz are accepted)"
        )
    return stream


def _decode_bounded(
    container: av.container.InputContainer, stream: av.AudioStream, limit_s: float, size_limit_s: float
) -> npt.NDArray[np.float32]:
    """Decode to planar float32 at the stream's own rate, refusing as soon as either bound is passed."""
    rate = stream.codec_context.sample_rate
    layout = "mono" if stream.codec_context.channels == 1 else "stereo"
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    chunks: list[npt.NDArray[np.float32]] = []
    frames = 0
    for decoded in container.decode(stream):
        for out in resampler.resample(decoded):
            chunk = out.to_ndarray().astype(np.float32, copy=False)
            chunks.append(chunk)
            frames += chunk.shape[1]
        _check_length(frames / rate, frames / rate, limit_s, size_limit_s, claimed=False)
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray().astype(np.float32, copy=False))
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32)
    return np.concatenate(chunks, axis=1).astype(np.float32, copy=False)


def _check_length(seconds: float, decoded_s: float, limit_s: float, size_limit_s: float, *, claimed: bool) -> None:
    """Refuse ``seconds`` of audio (claimed by the container, or decoded so far) past either bound."""
    what = "claims" if claimed else "decodes to"
    facts: dict[str, float | str] = {"durationS": round(seconds, 3), "decodedS": round(decoded_s, 3)}
    if seconds > size_limit_s:
        raise AudioTooLongForSize(
            f"audio too long for its size: the file {what} {seconds:.1f} s, more than its bytes can hold",
            facts=facts | {"maxForSizeS": round(size_limit_s, 1)},
        )
    if seconds > limit_s:
        max_s = limit_s - DURATION_TOLERANCE_S
        raise SampleTooLong(f"sample too long (max {max_s:g} s)", facts=facts | {"maxDurationS": max_s})


def _check_wav_claim(data: bytes, limit_s: float) -> None:
    """Refuse a WAV whose data chunk claims more audio than the file holds.

    FFmpeg silently shortens such a claim to the bytes present, so the header is read here: a claim past
    the duration limit is a lie about the size; a smaller one is a truncated upload.
    """
    claim = _wav_data_claim(data)
    if claim is None:
        return
    claimed_bytes, held_bytes, byte_rate = claim
    if claimed_bytes <= held_bytes:
        return
    claimed_s, held_s = claimed_bytes / byte_rate, held_bytes / byte_rate
    facts: dict[str, float | str] = {"durationS": round(claimed_s, 3), "decodedS": 0.0, "heldS": round(held_s, 3)}
    if claimed_s > limit_s:
        raise AudioTooLongForSize(
            f"audio too long for its size: the header claims {claimed_s:.1f} s but the file holds {held_s:.1f} s",
            facts=facts,
        )
    raise UnsupportedOrCorruptAudio(
        f"unsupported or corrupt audio: the file is truncated ({held_s:.1f} s of the {claimed_s:.1f} s "
        "its header claims)",
        facts=facts,
    )


def _wav_data_claim(data: bytes) -> tuple[int, int, int] | None:
    """(bytes the data chunk claims, bytes present after its header, byte rate), or None when unknown."""
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(data):
            (byte_rate,) = struct.unpack_from("<I", data, body + 8)
        elif chunk_id == b"data":
            if byte_rate == 0 or size in _WAV_UNKNOWN_SIZES:
                return None
            return size, len(data) - body, byte_rate
        pos = body + size + (size & 1)
    return None
