"""What voicegate stores of the audio a provider speaks: a WAV (or, for previews, the provider's own MP3),
the two formats its C2PA manifests are embedded in."""

from __future__ import annotations

import io
import wave
from typing import Final

from backend.audio.decode import decode_audio
from backend.audio.measure import downmix
from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.providers.wav import float_to_wav

#: The longest render decoded when a provider answers in another format than WAV.
MAX_RENDER_S: Final = 3600.0


def as_wav(audio: bytes) -> tuple[bytes, float]:
    """The render as a WAV and its length in seconds; a provider's MP3 or Ogg is decoded and re-encoded."""
    if sniff_audio(audio[:SNIFF_BYTES]) == "audio/wav":
        with wave.open(io.BytesIO(audio)) as reader:
            return audio, reader.getnframes() / reader.getframerate()
    decoded = decode_audio(audio, max_duration_s=MAX_RENDER_S)
    mono = downmix(decoded.samples).astype("float64")
    return float_to_wav(mono, decoded.sample_rate), decoded.duration_s


def wav_or_mp3(audio: bytes) -> tuple[bytes, str]:
    """The audio as it is when it is a WAV or an MP3 (by its bytes), else re-encoded as a WAV; with its type."""
    sniffed = sniff_audio(audio[:SNIFF_BYTES])
    if sniffed in {"audio/wav", "audio/mpeg"}:
        return audio, sniffed
    return as_wav(audio)[0], "audio/wav"
