"""Decoding is bounded: lying headers and compression bombs are refused before or while decoding."""

from __future__ import annotations

import struct

import pytest

from backend.audio.decode import DURATION_TOLERANCE_S, MIN_BITRATE_BPS, decode_audio
from backend.audio.errors import AudioRejected
from backend.audio.pipeline import analyse_bytes
from devkit.audio_corpus import RATE, encode, flac_bomb, speech_mono, wav_bytes, wav_claiming
from devkit.malformed_audio import pcm_wav

BOMB_FRAME_S = 65535 / 8000  # the bombs' FLAC frame: decoding stops within one of them past the bound


def refusal(data: bytes, max_duration_s: float | None = None) -> AudioRejected:
    with pytest.raises(AudioRejected) as caught:
        decode_audio(data, max_duration_s=max_duration_s)
    return caught.value


def test_a_wav_header_claiming_hours_is_refused_before_decoding() -> None:
    error = refusal(wav_claiming(wav_bytes(speech_mono(3.0)), 3 * 3600))
    assert error.code == "audio_too_long_for_size"
    assert (error.facts["durationS"], error.facts["decodedS"]) == (10800.0, 0.0)


def test_a_compression_bomb_claiming_its_length_is_refused_before_decoding(corpus: dict[str, bytes]) -> None:
    error = refusal(corpus["bomb.flac"])
    assert error.code == "audio_too_long_for_size"
    assert error.facts["decodedS"] == 0.0
    assert error.facts["durationS"] == pytest.approx(3600.0, abs=10)


def test_a_bomb_hiding_its_length_stops_at_its_size_bound(corpus: dict[str, bytes]) -> None:
    data = corpus["bomb_unknown_length.flac"]
    error = refusal(data)
    size_bound_s = len(data) * 8 / MIN_BITRATE_BPS
    assert error.code == "audio_too_long_for_size"
    assert size_bound_s < error.facts["decodedS"] <= size_bound_s + BOMB_FRAME_S


def test_a_bomb_hiding_its_length_stops_at_the_duration_limit(corpus: dict[str, bytes]) -> None:
    error = refusal(corpus["bomb_unknown_length.flac"], max_duration_s=30.0)
    assert error.code == "sample_too_long"
    assert 30.0 < error.facts["decodedS"] <= 30.0 + DURATION_TOLERANCE_S + BOMB_FRAME_S


def test_a_long_claim_is_refused_before_decoding() -> None:
    long_opus = encode(speech_mono(12.0), RATE, "ogg", "libopus", bit_rate=16000)
    error = refusal(long_opus, max_duration_s=5.0)
    assert (error.code, error.detail) == ("sample_too_long", "sample too long (max 5 s)")
    assert error.facts["decodedS"] == 0.0


def test_every_bound_has_a_small_tolerance() -> None:
    audio = decode_audio(wav_bytes(speech_mono(6.0)[: int(5.3 * RATE)]), max_duration_s=5.0)
    assert audio.duration_s == pytest.approx(5.3, abs=0.01)


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_a_streamed_wav_of_unknown_length_still_decodes(size: int) -> None:
    data = wav_bytes(speech_mono(3.0))
    at = data.index(b"data") + 4
    audio = decode_audio(data[:at] + struct.pack("<I", size) + data[at + 4 :])
    assert audio.duration_s == pytest.approx((len(data) - at - 4) / 2 / RATE, abs=0.01)


def test_a_truncated_wav_is_refused_as_corrupt() -> None:
    data = wav_bytes(speech_mono(6.0))
    error = refusal(data[: len(data) // 3])
    assert error.code == "unsupported_audio"
    assert error.detail.startswith("unsupported or corrupt audio: the file is truncated")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("cut_in_fmt.wav", "the file ends inside its header (its `fmt` chunk claims 16 bytes, and 7 follow)"),
        (
            "fmt_claims_gigabytes.wav",
            "the file ends inside its header (its `fmt` chunk claims 2147483648 bytes, and 16024 follow)",
        ),
        (
            "list_size_near_4gib.wav",
            "the file ends inside its header (its `LIST` chunk claims 4294967280 bytes, and 16012 follow)",
        ),
        ("riff_only.wav", "the file holds no audio (its header has no data chunk)"),
        ("zero_channels.wav", "the file says it has 0 channels"),
        ("rate_0.wav", "0 Hz, 1 channel(s) (sample rates 8000-96000 Hz are accepted)"),
    ],
)
def test_a_wav_header_that_leads_to_no_audio_is_refused_in_words(
    malformed: dict[str, bytes], name: str, words: str
) -> None:
    error = refusal(malformed[name])
    assert (error.code, error.detail) == ("unsupported_audio", f"unsupported or corrupt audio: {words}")


def test_a_chunk_id_that_is_not_letters_is_not_repeated() -> None:
    data = pcm_wav()
    at = data.index(b"fmt ")
    garbled = data[:at] + b"\x00\xff\x01\n" + struct.pack("<I", 2**31) + data[at + 8 :]
    assert refusal(garbled).detail.startswith(
        "unsupported or corrupt audio: the file ends inside its header (its unnamed chunk"
    )


def test_tags_in_another_encoding_do_not_fail_the_upload() -> None:
    data = wav_bytes(speech_mono(3.0))
    title = b"caf\xe9 cr\xe8me\x00\x00"  # Latin-1, as old recorders write INFO tags
    info = b"INFO" + b"INAM" + struct.pack("<I", len(title)) + title
    at = data.index(b"data")
    tagged = data[:at] + b"LIST" + struct.pack("<I", len(info)) + info + data[at:]
    tagged = tagged[:4] + struct.pack("<I", len(tagged) - 8) + tagged[8:]
    assert decode_audio(tagged).duration_s == decode_audio(data).duration_s


def test_the_declared_type_never_decides() -> None:
    """Bytes decide: FLAC data behind no name at all decodes as FLAC; a WAV header on Ogg bytes does not."""
    flac = flac_bomb(2.0)
    assert decode_audio(flac).mime_type == "audio/flac"
    ogg = encode(speech_mono(3.0), RATE, "ogg", "libopus")
    with pytest.raises(AudioRejected) as caught:
        analyse_bytes(b"RIFF\x00\x00\x00\x00WAVE" + ogg)
    assert caught.value.code == "unsupported_audio"
