"""Recognise an audio container from its first bytes; the declared type and file name never decide."""

from __future__ import annotations

from collections.abc import Callable

#: How many leading bytes `sniff_audio` needs to decide.
SNIFF_BYTES = 64

_MP3_FRAME_SYNC = 0xFFE0
# Brands an audio-only MP4 carries (M4A from iTunes/ffmpeg, generic ISO brands browsers emit).
_MP4_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"mp42", b"isom", b"iso5", b"iso6", b"dash", b"mp41"})

_SIGNATURES: list[tuple[Callable[[bytes], bool], str]] = [
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WAVE", "audio/wav"),
    (lambda h: h[:4] == b"fLaC", "audio/flac"),
    (lambda h: h[:4] == b"OggS", "audio/ogg"),
    (lambda h: h[:4] == b"\x1a\x45\xdf\xa3", "audio/webm"),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in _MP4_AUDIO_BRANDS, "audio/mp4"),
    (lambda h: h[:3] == b"ID3", "audio/mpeg"),
    (lambda h: len(h) >= 2 and int.from_bytes(h[:2], "big") & _MP3_FRAME_SYNC == _MP3_FRAME_SYNC, "audio/mpeg"),
]


def sniff_audio(head: bytes) -> str | None:
    """The MIME type of the audio container `head` starts, or None when it is not audio we accept.

    Recognises WAV, FLAC, Ogg (Opus/Vorbis), WebM/Matroska (what browsers record), MP4/M4A and MP3
    (with or without an ID3 tag). Decoding (`decode.py`) confirms the codec; this only refuses what is
    plainly not audio before anything is stored or enrolled.
    """
    for matches, mime in _SIGNATURES:
        if matches(head):
            return mime
    return None
