"""Bounded decoding: the container comes from the bytes, and no file decodes to more than its limits allow.

WAV, FLAC, Ogg (Opus, Vorbis) and MP3 decode in process with libsndfile (LGPL); what it cannot read
(WebM and MP4/M4A recordings, Ogg/FLAC, a FLAC of unknown length, ...) goes to the ffmpeg executable, a
separate program (`backend.audio.ffmpeg`): no FFmpeg library is ever loaded into the process.

Two bounds apply to every file, both checked against what the container claims before anything is
decoded and again against the samples actually decoded, so a lying header cannot slip past either:

* the duration limit (the caller's maximum, or ``MAX_DECODE_S``) refuses a sample that is too long;
* the size bound refuses audio longer than its byte count can honestly hold at ``MIN_BITRATE_BPS``
  (a compression bomb, or a header claiming hours).

An ffmpeg child also has ``FFMPEG_TIMEOUT_S`` to finish, and is killed when it overruns or either bound is
passed.

Whatever decodes it, every block of samples is checked finite as it arrives (`_Samples`): a float WAV can hold
NaN or infinity, which no measurement, voiceprint or watermark can be computed on, so a file holding one is
refused here, once for every route and worker, and never reaches them. A WAV's header is read before decoding
(`_wav_data_chunk`), so that a header the file ends inside, a channel count or rate no sample has, or a WAV
without audio is refused in words rather than as a decoder's "invalid data".
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile

from backend.audio.errors import AudioTooLongForSize, RefusalFacts, SampleTooLong, UnsupportedOrCorruptAudio
from backend.audio.ffmpeg import FfmpegDecoder
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
#: ffmpeg decodes the longest sample (``MAX_DECODE_S``) in a few seconds even on a loaded machine; one
#: that takes longer is stuck on the file, and is killed.
FFMPEG_TIMEOUT_S: Final = 60.0

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
# Sniffed container -> the libsndfile formats that are it (anything else libsndfile opens goes to ffmpeg).
_SNDFILE_FORMATS: Final[dict[str, frozenset[str]]] = {
    "audio/wav": frozenset({"WAV", "WAVEX"}),
    "audio/flac": frozenset({"FLAC"}),
    "audio/ogg": frozenset({"OGG"}),
    "audio/mpeg": frozenset({"MP3"}),
}
# libsndfile's subtypes by the names of FFmpeg's decoders for them, which reports have always carried.
_SNDFILE_CODECS: Final[dict[str, str]] = {
    "PCM_U8": "pcm_u8",
    "PCM_16": "pcm_s16le",
    "PCM_24": "pcm_s24le",
    "PCM_32": "pcm_s32le",
    "FLOAT": "pcm_f32le",
    "DOUBLE": "pcm_f64le",
    "ULAW": "pcm_mulaw",
    "ALAW": "pcm_alaw",
    "IMA_ADPCM": "adpcm_ima_wav",
    "MS_ADPCM": "adpcm_ms",
    "GSM610": "gsm_ms",
    "VORBIS": "vorbis",
    "OPUS": "opus",
    "MPEG_LAYER_I": "mp1float",
    "MPEG_LAYER_II": "mp2float",
    "MPEG_LAYER_III": "mp3float",
}
#: libsndfile's frame count for a length it does not know (SF_COUNT_MAX).
_SNDFILE_UNKNOWN_FRAMES: Final = 2**63 - 1
_NOT_AUDIO: Final = "unsupported or corrupt audio: not a WAV, MP3, FLAC, OGG, WebM or M4A audio file"
# The WAV data size streaming writers leave when they cannot seek back (the other is 0): the length is unknown.
_WAV_UNKNOWN_SIZE: Final = 0xFFFFFFFF
#: Channels past the first two (centre, LFE, surrounds) go to both sides of the stereo fold at -3 dB.
_FOLD_GAIN: Final = 2**-0.5


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """A whole sample as finite float32, full scale at ±1, shape (channels, frames); more than two channels are
    folded to stereo."""

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
        data = _check_wav_header(data, limit_s)
    decoded = _decode_in_process(data, mime, limit_s, size_limit_s) or _decode_with_ffmpeg(
        data, mime, limit_s, size_limit_s
    )
    if decoded.samples.shape[1] == 0:
        raise UnsupportedOrCorruptAudio("unsupported or corrupt audio: no audio could be decoded")
    return decoded


def _decode_in_process(data: bytes, mime: str, limit_s: float, size_limit_s: float) -> DecodedAudio | None:
    """The sample decoded by libsndfile, or None when libsndfile cannot read these bytes as ``mime``."""
    if mime not in _SNDFILE_FORMATS:
        return None
    try:
        sound = soundfile.SoundFile(io.BytesIO(data))
    except soundfile.LibsndfileError:
        return None
    with sound:
        # A length libsndfile does not know (a FLAC streamed out without one) fails it at the end of the file.
        if sound.format not in _SNDFILE_FORMATS[mime] or sound.frames == _SNDFILE_UNKNOWN_FRAMES:
            return None
        codec = "flac" if sound.format == "FLAC" else _SNDFILE_CODECS.get(sound.subtype, sound.subtype.lower())
        rate, channels = sound.samplerate, sound.channels
        _check_codec(mime, codec)
        _check_format(rate, channels)
        if sound.frames > 0:
            _check_length(sound.frames / rate, 0.0, limit_s, size_limit_s, claimed=True)
        samples = _Samples(rate, limit_s, size_limit_s)
        try:
            while (block := sound.read(rate, dtype="float32", always_2d=True)).shape[0]:
                samples.add(block)
        except soundfile.LibsndfileError as exc:
            raise UnsupportedOrCorruptAudio("unsupported or corrupt audio", facts={"reason": exc.error_string}) from exc
    return DecodedAudio(samples=samples.planar(), sample_rate=rate, channels=channels, mime_type=mime, codec=codec)


def _decode_with_ffmpeg(data: bytes, mime: str, limit_s: float, size_limit_s: float) -> DecodedAudio:
    """The sample decoded by an ffmpeg child, told the container (an MP4 indexed at its end goes as a file)."""
    demuxer, _ = _CONTAINERS[mime]
    seekable = mime == "audio/mp4" and not _moov_first(data)
    with FfmpegDecoder(data, demuxer, timeout_s=FFMPEG_TIMEOUT_S, seekable=seekable) as child:
        info = child.input_info()
        if info.has_video:
            raise UnsupportedOrCorruptAudio("unsupported or corrupt audio: the file contains video")
        if info.codec is None:
            raise UnsupportedOrCorruptAudio("unsupported or corrupt audio: the file has no audio track")
        _check_codec(mime, info.codec)
        if info.duration_s:
            _check_length(info.duration_s, 0.0, limit_s, size_limit_s, claimed=True)
        rate, channels = child.output_format()  # said before the first sample
        _check_format(rate, channels)
        samples = _Samples(rate, limit_s, size_limit_s)
        while (block := child.read_block()).shape[0]:
            samples.add(block)
    return DecodedAudio(samples=samples.planar(), sample_rate=rate, channels=channels, mime_type=mime, codec=info.codec)


def _check_codec(mime: str, codec: str) -> None:
    """Refuse a codec the container is not accepted with."""
    accepted = codec.startswith("pcm_") if mime == "audio/wav" else codec in _CONTAINERS[mime][1]
    if not accepted:
        raise UnsupportedOrCorruptAudio(f"unsupported or corrupt audio: codec {codec} is not accepted in {mime}")


def _check_format(rate: int, channels: int) -> None:
    """Refuse rates or channel counts no voice sample has."""
    if channels < 1:
        raise UnsupportedOrCorruptAudio(f"unsupported or corrupt audio: the file says it has {channels} channels")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise UnsupportedOrCorruptAudio(
            f"unsupported or corrupt audio: {rate} Hz, {channels} channel(s) "
            f"(sample rates {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz are accepted)"
        )


class _Samples:
    """Decoded blocks, folded to at most two channels as they come (so memory never grows with the channel
    count), refused as soon as either bound is passed."""

    def __init__(self, rate: int, limit_s: float, size_limit_s: float) -> None:
        self._rate, self._limit_s, self._size_limit_s = rate, limit_s, size_limit_s
        self._blocks: list[npt.NDArray[np.float32]] = []
        self._frames = 0

    def add(self, block: npt.NDArray[np.float32]) -> None:
        """Take ``block`` (frames, channels), refused when it holds a sample that is not a finite number."""
        _check_finite(block, self._frames, self._rate)
        self._blocks.append(_fold(block))
        self._frames += block.shape[0]
        decoded_s = self._frames / self._rate
        _check_length(decoded_s, decoded_s, self._limit_s, self._size_limit_s, claimed=False)

    def planar(self) -> npt.NDArray[np.float32]:
        """Everything taken, shape (channels, frames)."""
        if not self._blocks:
            return np.zeros((1, 0), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(self._blocks, axis=1), dtype=np.float32)


def _check_finite(block: npt.NDArray[np.float32], start: int, rate: int) -> None:
    """Refuse ``block`` (frames, channels, starting at frame ``start`` of the file) when a sample in it is NaN or
    infinite: a float WAV's own, or a double past float32's range, which becomes infinite as it is read."""
    finite = np.isfinite(block)
    if finite.all():
        return
    frame, channel = np.argwhere(~finite)[0]
    value = block[frame, channel]
    kind = "NaN (not a number)" if np.isnan(value) else ("+infinity" if value > 0 else "-infinity")
    raise UnsupportedOrCorruptAudio(
        f"unsupported or corrupt audio: the sample at {(start + frame) / rate:.3f} s is {kind}; "
        "audio samples must be finite numbers"
    )


def _fold(block: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``block`` (frames, channels) as (channels, frames), more than two channels folded to stereo: the first
    two are left and right, the others go to both at -3 dB, scaled so full scale stays within full scale."""
    if block.shape[1] <= 2:
        planar: npt.NDArray[np.float32] = block.T
        return planar
    rest = block[:, 2:].sum(axis=1) * _FOLD_GAIN
    scale = 1 / (1 + _FOLD_GAIN * (block.shape[1] - 2))
    folded: npt.NDArray[np.float32] = (np.stack([block[:, 0] + rest, block[:, 1] + rest]) * scale).astype(np.float32)
    return folded


def _moov_first(data: bytes) -> bool:
    """Whether an MP4's index (``moov``) comes before its media (``mdat``), as ffmpeg needs to read it from a
    pipe; recorders that write the index last leave a file that must be read from a seekable copy."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if kind in {b"moov", b"mdat"}:
            return kind == b"moov"
        if size == 1 and pos + 16 <= len(data):
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size < 8:  # 0: the box runs to the end of the file; smaller: not a box
            return False
        pos += size
    return False


def _check_length(seconds: float, decoded_s: float, limit_s: float, size_limit_s: float, *, claimed: bool) -> None:
    """Refuse ``seconds`` of audio (claimed by the container, or decoded so far) past either bound."""
    what = "claims" if claimed else "decodes to"
    facts: RefusalFacts = {"durationS": round(seconds, 3), "decodedS": round(decoded_s, 3)}
    if seconds > size_limit_s:
        raise AudioTooLongForSize(
            f"audio too long for its size: the file {what} {seconds:.1f} s, more than its bytes can hold",
            facts=facts | {"maxForSizeS": round(size_limit_s, 1)},
        )
    if seconds > limit_s:
        max_s = limit_s - DURATION_TOLERANCE_S
        raise SampleTooLong(f"sample too long (max {max_s:g} s)", facts=facts | {"maxDurationS": max_s})


def _check_wav_header(data: bytes, limit_s: float) -> bytes:
    """Refuse a WAV whose header does not lead to its audio (`_wav_data_chunk`) or whose data chunk claims more
    audio than the file holds; return the WAV, a data size of 0 (a streaming writer's "unknown", which libsndfile
    reads as no audio) set to the bytes present.

    Decoders silently shorten a claim to the bytes present, so the header is read here: a claim past the
    duration limit is a lie about the size; a smaller one is a truncated upload.
    """
    chunk = _wav_data_chunk(data)
    if chunk is None:
        return data
    at, claimed_bytes, byte_rate = chunk
    held_bytes = len(data) - at - 4
    if claimed_bytes == 0:
        return data[:at] + struct.pack("<I", held_bytes) + data[at + 4 :]
    if claimed_bytes == _WAV_UNKNOWN_SIZE or claimed_bytes <= held_bytes:
        return data
    claimed_s, held_s = claimed_bytes / byte_rate, held_bytes / byte_rate
    facts: RefusalFacts = {"durationS": round(claimed_s, 3), "decodedS": 0.0, "heldS": round(held_s, 3)}
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


def _wav_data_chunk(data: bytes) -> tuple[int, int, int] | None:
    """(where the data chunk's size is, the size it says, the byte rate), or None when the data chunk comes
    before a fmt chunk that gives the byte rate (the decoders then say what they make of it).

    Refuses, in words, what no decoder reads either: a chunk before the data that claims more bytes than the
    file holds after it (a header cut short, or a size near 4 GiB), a fmt chunk's channel count or rate that
    no sample has, and a WAV without a data chunk.
    """
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"data":
            return None if byte_rate == 0 else (pos + 4, size, byte_rate)
        if body + size > len(data):
            raise UnsupportedOrCorruptAudio(
                f"unsupported or corrupt audio: the file ends inside its header (its {_chunk_name(chunk_id)} "
                f"chunk claims {size} bytes, and {len(data) - body} follow)"
            )
        if chunk_id == b"fmt " and size >= 16:
            channels, rate, byte_rate = struct.unpack_from("<HII", data, body + 2)
            _check_format(rate, channels)
        pos = body + size + (size & 1)
    raise UnsupportedOrCorruptAudio(
        "unsupported or corrupt audio: the file holds no audio (its header has no data chunk)"
    )


def _chunk_name(chunk_id: bytes) -> str:
    """A RIFF chunk's id as a reader can be told it: its letters, or "unnamed" for bytes that are not."""
    name = chunk_id.decode("latin-1").strip()
    return f"`{name}`" if name.isascii() and name.isprintable() and name else "unnamed"
