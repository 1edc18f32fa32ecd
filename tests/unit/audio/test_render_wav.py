"""What a synthesis job stores is always a WAV carrying the watermark: a provider's WAV, MP3 or Ogg/Opus is
decoded, marked and written again as mono 16-bit PCM, and the length is measured; a preview the provider spoke as
MP3 stays an MP3, marked; a render served as MP3 keeps its mark."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from backend.audio.decode import decode_audio
from backend.audio.errors import UnsupportedOrCorruptAudio
from backend.audio.render import PIECE_PAUSE_S, marked_preview, marked_wav, render_as_mp3
from backend.audio.sniff import sniff_audio
from backend.watermark import detect
from devkit.audio_corpus import encode, speech_mono, wav_bytes

RATE = 24000


def carries_the_mark(data: bytes) -> bool:
    decoded = decode_audio(data)
    return detect(decoded.samples, decoded.sample_rate).present


def test_a_wav_is_written_again_marked_with_its_length() -> None:
    voice = speech_mono(2.0, RATE)
    data = wav_bytes(voice, RATE)
    assert not carries_the_mark(data)

    wav, seconds = marked_wav([data])

    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, RATE)
        assert reader.getnframes() == len(voice)
    assert seconds == len(voice) / RATE
    assert carries_the_mark(wav)


@pytest.mark.parametrize(("container", "codec", "rate"), [("mp3", "libmp3lame", 44100), ("ogg", "libopus", 48000)])
def test_compressed_audio_becomes_a_marked_mono_wav_of_the_same_length(container: str, codec: str, rate: int) -> None:
    voice = speech_mono(3.0, rate)
    data = encode(np.stack([voice, voice * 0.5]), rate, container, codec)

    wav, seconds = marked_wav([data])

    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, rate)
        assert reader.getnframes() / rate == pytest.approx(seconds)
    # Encoder priming and padding add a few milliseconds; nothing is lost or doubled.
    assert seconds == pytest.approx(len(voice) / rate, abs=0.08)
    assert carries_the_mark(wav)


def test_an_answer_that_is_not_audio_is_refused() -> None:
    with pytest.raises(UnsupportedOrCorruptAudio):
        marked_wav([b'{"detail": "not audio"}'])


def test_pieces_are_joined_into_one_marked_wav_at_the_first_rate_with_a_pause_between() -> None:
    first, second = speech_mono(1.5, RATE), speech_mono(1.0, 16000, seed=1)
    wav, seconds = marked_wav([wav_bytes(first, RATE), encode(second, 16000, "mp3", "libmp3lame")])

    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getframerate()) == (1, RATE)
        frames = reader.getnframes()
    assert frames / RATE == pytest.approx(seconds)
    expected = len(first) / RATE + PIECE_PAUSE_S + len(second) / 16000
    assert seconds == pytest.approx(expected, abs=0.08)
    assert carries_the_mark(wav)


def test_a_preview_spoken_as_mp3_stays_an_mp3_and_any_other_becomes_a_wav_each_marked() -> None:
    voice = speech_mono(2.0, 44100, seed=2)
    mp3 = encode(voice, 44100, "mp3", "libmp3lame")

    preview, mime_type = marked_preview(mp3)

    assert (mime_type, sniff_audio(preview)) == ("audio/mpeg", "audio/mpeg")
    assert carries_the_mark(preview)
    preview, mime_type = marked_preview(wav_bytes(voice, 44100))
    assert (mime_type, sniff_audio(preview)) == ("audio/wav", "audio/wav")
    assert carries_the_mark(preview)


def test_a_render_served_as_mp3_keeps_its_mark() -> None:
    wav, _ = marked_wav([wav_bytes(speech_mono(2.0, RATE, seed=4), RATE)])

    mp3 = render_as_mp3(wav)

    assert sniff_audio(mp3) == "audio/mpeg"
    assert carries_the_mark(mp3)
