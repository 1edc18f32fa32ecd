"""The formats a stream is sent in, made from PCM chunks cut anywhere: the PCM itself, a WAV of unknown length
that readers still read whole, and MP3 that decodes to the same length (plus the encoder's padding)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
import soundfile

from backend.audio.formats import StreamEncoder, streaming_wav_header

RATE = 24000


def tone(seconds: float) -> bytes:
    t = np.arange(round(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()


def encode(fmt: str, pcm: bytes, cut: int) -> tuple[bytes, StreamEncoder]:
    """`pcm` fed in chunks of `cut` bytes (odd sizes split samples), then finished."""
    encoder = StreamEncoder(fmt)  # type: ignore[arg-type]
    out = b"".join(encoder.feed(pcm[i : i + cut]) for i in range(0, len(pcm), cut))
    return out + encoder.finish(), encoder


@pytest.mark.parametrize("cut", [1, 777, 4800])
def test_pcm_is_passed_through_whole_samples_only(cut: int) -> None:
    pcm = tone(0.5)
    out, encoder = encode("pcm_24000", pcm, cut)
    assert out == pcm
    assert encoder.samples == len(pcm) // 2
    assert encoder.seconds == pytest.approx(0.5)


def test_a_dangling_half_sample_is_not_sent() -> None:
    out, encoder = encode("pcm_24000", b"\x01\x02\x03", 3)
    assert (out, encoder.samples) == (b"\x01\x02", 1)


def test_the_wav_header_says_unknown_length_and_readers_read_what_follows() -> None:
    pcm = tone(0.5)
    out, _ = encode("wav", pcm, 333)
    assert out[:44] == streaming_wav_header()
    assert out[4:8] == out[40:44] == b"\xff\xff\xff\xff"
    with wave.open(io.BytesIO(out)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        assert wav.readframes(10**9) == pcm
    assert soundfile.read(io.BytesIO(out), dtype="int16")[0].tobytes() == pcm


def test_an_empty_wav_stream_is_still_a_header() -> None:
    assert encode("wav", b"", 1)[0] == streaming_wav_header()


def test_mp3_decodes_to_the_length_it_was_given_plus_the_encoders_padding() -> None:
    pcm = tone(1.0) + bytes(2 * 2880) + tone(0.7)  # two sentences and the pause between them
    out, encoder = encode("mp3", pcm, 4801)
    # MPEG-2 Layer III frames (24 kHz) at 64 kbit/s (bitrate index 8), each of 576 samples in 192 bytes.
    headers = {out[at : at + 3] for at in range(0, len(out), 192)}
    assert {(header[:2], header[2] >> 4) for header in headers} == {(b"\xff\xf3", 8)}
    decoded, rate = soundfile.read(io.BytesIO(out), dtype="float32")
    assert (rate, decoded.ndim) == (RATE, 1)
    assert encoder.samples <= decoded.size <= encoder.samples + round(0.15 * RATE)


def test_silence_is_fed_like_audio() -> None:
    encoder = StreamEncoder("pcm_24000")
    assert encoder.silence(0.12) == bytes(2 * 2880)
    assert encoder.samples == 2880
