"""The container is recognised from the bytes alone."""

from __future__ import annotations

import pytest

from backend.audio.sniff import sniff_audio


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio/wav"),
        (b"fLaC\x00\x00\x00\x22", "audio/flac"),
        (b"OggS\x00\x02" + b"\x00" * 20, "audio/ogg"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "audio/webm"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio/mp4"),
        (b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00", "audio/mp4"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x23", "audio/mpeg"),
        (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
    ],
)
def test_audio_containers_are_recognised(head: bytes, mime: str) -> None:
    assert sniff_audio(head) == mime


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, this is a text file renamed .wav",
        b"RIFF\x24\x08\x00\x00AVI LIST",
        b"\x89PNG\r\n\x1a\n",
        b"%PDF-1.7",
        b"\x00\x00\x00\x20ftypqt  ",
        b"<html><body>",
    ],
)
def test_what_is_not_audio_is_refused(head: bytes) -> None:
    assert sniff_audio(head) is None
