"""What a synthesis job stores is always a WAV: a provider's WAV passes through, its MP3 or Ogg/Opus is
decoded and written again as mono 16-bit PCM, and the length is measured either way."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from backend.audio.errors import UnsupportedOrCorruptAudio
from backend.audio.render import PIECE_PAUSE_S, as_wav, join_wav
from tests.audio_corpus import encode, speech_mono, wav_bytes

RATE = 24000


def test_a_wav_passes_through_with_its_length() -> None:
    voice = speech_mono(2.0, RATE)
    data = wav_bytes(voice, RATE)

    wav, seconds = as_wav(data)

    assert wav is data
    assert seconds == len(voice) / RATE


@pytest.mark.parametrize(("container", "codec", "rate"), [("mp3", "libmp3lame", 44100), ("ogg", "libopus", 48000)])
def test_compressed_audio_becomes_a_mono_wav_of_the_same_length(container: str, codec: str, rate: int) -> None:
    voice = speech_mono(3.0, rate)
    data = encode(np.stack([voice, voice * 0.5]), rate, container, codec)

    wav, seconds = as_wav(data)

    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, rate)
        assert reader.getnframes() / rate == pytest.approx(seconds)
    # Encoder priming and padding add a few milliseconds; nothing is lost or doubled.
    assert seconds == pytest.approx(len(voice) / rate, abs=0.08)


def test_an_answer_that_is_not_audio_is_refused() -> None:
    with pytest.raises(UnsupportedOrCorruptAudio):
        as_wav(b'{"detail": "not audio"}')


def test_pieces_are_joined_into_one_wav_at_the_first_rate_with_a_pause_between() -> None:
    first, second = speech_mono(1.5, RATE), speech_mono(1.0, 16000, seed=1)
    wav, seconds = join_wav([wav_bytes(first, RATE), encode(second, 16000, "mp3", "libmp3lame")])

    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getframerate()) == (1, RATE)
        frames = reader.getnframes()
    assert frames / RATE == pytest.approx(seconds)
    expected = len(first) / RATE + PIECE_PAUSE_S + len(second) / 16000
    assert seconds == pytest.approx(expected, abs=0.08)


def test_one_piece_passes_through() -> None:
    data = wav_bytes(speech_mono(1.0, RATE), RATE)
    assert join_wav([data])[0] is data
