"""Reading the WAVs speech servers answer: headers arriving in pieces, float samples, the extensible
header, and the formats refused."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from backend.wav import MAX_WAV_HEADER, WavFormat, pcm16_to_wav, wav_format, wav_to_pcm16
from fakes.audio import tone_pcm
from fakes.selfhosted import float_wav, streamed_wav_header


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"".join(name + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1) for name, data in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def test_a_streamed_header_is_read_only_once_it_has_all_arrived() -> None:
    header = streamed_wav_header(24000)

    assert [wav_format(header[:n]) for n in range(len(header))] == [None] * len(header)
    assert wav_format(header) == WavFormat("pcm16", 1, 24000, data_offset=44, data_size=0xFFFFFFFF)
    assert wav_format(header + b"\x01\x02")  # samples after the header change nothing


def test_float_samples_become_16_bit_and_stereo_becomes_mono() -> None:
    pcm = tone_pcm(0.5, 24000, 330.0)
    floats = float_wav(pcm, 24000)
    assert wav_format(floats) == WavFormat("float32", 1, 24000, data_offset=56, data_size=len(pcm) * 2)

    converted, rate = wav_to_pcm16(floats)

    assert rate == 24000
    assert np.abs(np.frombuffer(converted, "<i2").astype(int) - np.frombuffer(pcm, "<i2")).max() <= 1
    stereo = np.repeat(np.frombuffer(pcm, "<i2"), 2).tobytes()
    assert wav_to_pcm16(pcm16_to_wav(stereo, 16000, channels=2)) == (pcm, 16000)


def test_the_extensible_header_names_its_samples_in_its_guid() -> None:
    guid_pcm = struct.pack("<H", 1) + bytes(14)
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 24000, 48000, 2, 16, 22, 16, 4) + guid_pcm
    wav = riff((b"fmt ", fmt), (b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00"), (b"data", b"\x01\x00\x02\x00"))

    assert wav_format(wav) == WavFormat("pcm16", 1, 24000, data_offset=len(wav) - 4, data_size=4)
    assert wav_to_pcm16(wav) == (b"\x01\x00\x02\x00", 24000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"ID3\x04" + bytes(60), "not a RIFF/WAVE"),
        (b"RIFX", "not a RIFF/WAVE"),
        (riff((b"fmt ", struct.pack("<HHIIHH", 1, 1, 24000, 72000, 3, 24)), (b"data", b"")), "24 bits"),
        (riff((b"data", b""), (b"fmt ", struct.pack("<HHIIHH", 1, 1, 24000, 48000, 2, 16))), "before its format"),
        (b"RIFF\0\0\0\0WAVELIST" + struct.pack("<I", MAX_WAV_HEADER), "does not end"),
    ],
)
def test_what_is_not_a_wav_of_16_bit_or_float_samples_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wav_format(data)
