"""What voicegate stores of the audio a provider speaks: a WAV (or, for previews, the provider's own MP3),
the two formats its C2PA manifests are embedded in."""

from __future__ import annotations

import io
import wave
from typing import Final

import numpy as np
import numpy.typing as npt

from backend.audio.decode import decode_audio
from backend.audio.formats import StreamEncoder
from backend.audio.measure import downmix, resample
from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.providers.base import STREAM_SAMPLE_RATE
from backend.providers.wav import float_to_wav

#: The longest render decoded when a provider answers in another format than WAV.
MAX_RENDER_S: Final = 3600.0
#: Silence between the pieces of a render (each piece is whole sentences, spoken on its own).
PIECE_PAUSE_S: Final = 0.12


def as_wav(audio: bytes) -> tuple[bytes, float]:
    """The render as a WAV and its length in seconds; a provider's MP3 or Ogg is decoded and re-encoded."""
    if sniff_audio(audio[:SNIFF_BYTES]) == "audio/wav":
        with wave.open(io.BytesIO(audio)) as reader:
            return audio, reader.getnframes() / reader.getframerate()
    decoded = decode_audio(audio, max_duration_s=MAX_RENDER_S)
    mono = downmix(decoded.samples).astype("float64")
    return float_to_wav(mono, decoded.sample_rate), decoded.duration_s


def join_wav(audios: list[bytes]) -> tuple[bytes, float]:
    """The pieces of a render (each a provider's WAV, MP3 or Ogg) as one WAV, a short pause between
    them, at the first piece's rate; and its length in seconds."""
    if len(audios) == 1:
        return as_wav(audios[0])
    signals: list[npt.NDArray[np.float64]] = []
    rate = 0
    for audio in audios:
        decoded = decode_audio(audio, max_duration_s=MAX_RENDER_S)
        mono = downmix(decoded.samples)
        rate = rate or decoded.sample_rate
        if decoded.sample_rate != rate:
            mono = resample(mono, decoded.sample_rate, rate)
        if signals:
            signals.append(np.zeros(round(PIECE_PAUSE_S * rate)))
        signals.append(mono.astype(np.float64))
    joined = np.concatenate(signals)
    return float_to_wav(joined, rate), joined.size / rate


def wav_or_mp3(audio: bytes) -> tuple[bytes, str]:
    """The audio as it is when it is a WAV or an MP3 (by its bytes), else re-encoded as a WAV; with its type."""
    sniffed = sniff_audio(audio[:SNIFF_BYTES])
    if sniffed in {"audio/wav", "audio/mpeg"}:
        return audio, sniffed
    return as_wav(audio)[0], "audio/wav"


def render_as_mp3(wav: bytes) -> bytes:
    """A stored render (a WAV at any rate) as the 24 kHz mono MP3 the speech routes stream, by the same
    encoder (libsndfile's LAME, in process). The C2PA manifest embedded in the WAV is not carried over."""
    decoded = decode_audio(wav, max_duration_s=MAX_RENDER_S)
    mono = resample(downmix(decoded.samples), decoded.sample_rate, STREAM_SAMPLE_RATE)
    pcm = (np.clip(mono, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    encoder = StreamEncoder("mp3")
    return encoder.feed(pcm) + encoder.finish()
