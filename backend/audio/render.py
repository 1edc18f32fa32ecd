"""What voicegate stores of the audio a provider speaks: a WAV (or, for a preview the provider spoke as MP3, an
MP3), the two formats its C2PA manifests are embedded in, always carrying the watermark (`backend.watermark`),
whichever provider spoke it."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backend import watermark
from backend.audio.decode import decode_audio
from backend.audio.formats import StreamEncoder
from backend.audio.measure import downmix, resample
from backend.audio.sniff import SNIFF_BYTES, sniff_audio
from backend.providers.base import STREAM_SAMPLE_RATE
from backend.wav import float_to_wav

#: The longest piece of a render decoded.
MAX_RENDER_S: Final = 3600.0
#: Silence between the pieces of a render (each piece is whole sentences, spoken on its own).
PIECE_PAUSE_S: Final = 0.12


def _mono(audio: bytes) -> tuple[npt.NDArray[np.float64], int]:
    """A provider's answer (WAV, MP3 or Ogg) as mono float64 samples and their rate."""
    decoded = decode_audio(audio, max_duration_s=MAX_RENDER_S)
    return downmix(decoded.samples).astype(np.float64), decoded.sample_rate


def marked_wav(audios: list[bytes]) -> tuple[bytes, float]:
    """The pieces of a render (each a provider's WAV, MP3 or Ogg) as one WAV carrying the watermark, a short
    pause between them, at the first piece's rate; and its length in seconds. Marked here, before the C2PA
    manifest is embedded, so the manifest's hash covers the marked audio."""
    signals: list[npt.NDArray[np.float64]] = []
    rate = 0
    for audio in audios:
        mono, piece_rate = _mono(audio)
        rate = rate or piece_rate
        if piece_rate != rate:
            mono = resample(mono.astype(np.float32), piece_rate, rate).astype(np.float64)
        if signals:
            signals.append(np.zeros(round(PIECE_PAUSE_S * rate)))
        signals.append(mono)
    joined = watermark.mark(np.concatenate(signals), rate)
    return float_to_wav(joined, rate), joined.size / rate


def marked_preview(audio: bytes) -> tuple[bytes, str]:
    """A provider's preview carrying the watermark, with its type: an MP3 stays an MP3 (the 24 kHz mono MP3
    the speech routes stream, by the same encoder), anything else becomes a WAV."""
    if sniff_audio(audio[:SNIFF_BYTES]) != "audio/mpeg":
        return marked_wav([audio])[0], "audio/wav"
    mono, rate = _mono(audio)
    return _mp3(watermark.mark(mono, rate), rate), "audio/mpeg"


def _mp3(mono: npt.NDArray[np.float64], rate: int) -> bytes:
    """``mono`` as the 24 kHz mono MP3 the speech routes stream (libsndfile's LAME, in process)."""
    at_stream_rate = resample(mono.astype(np.float32), rate, STREAM_SAMPLE_RATE)
    pcm = (np.clip(at_stream_rate, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    encoder = StreamEncoder("mp3")
    return encoder.feed(pcm) + encoder.finish()


def render_as_mp3(wav: bytes) -> bytes:
    """A stored render (a WAV at any rate, marked when it was made) as the 24 kHz mono MP3 the speech routes
    stream, by the same encoder. The C2PA manifest embedded in the WAV is not carried over; the watermark is
    (it survives MP3 at 64 kbit/s)."""
    mono, rate = _mono(wav)
    return _mp3(mono, rate)
