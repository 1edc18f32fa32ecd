"""A float sample that is not a finite number (NaN, ±infinity, or a double past float32's range) is refused as the
file is decoded, by libsndfile or by ffmpeg, with the second it is at; finite float samples decode as they are,
past full scale too."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from backend.audio.decode import decode_audio
from backend.audio.errors import AudioRejected
from devkit.malformed_audio import RATE, chunk, float_wav, fmt, riff

FINITE = "; audio samples must be finite numbers"


def detail(data: bytes) -> tuple[int, str, str]:
    with pytest.raises(AudioRejected) as caught:
        decode_audio(data)
    return caught.value.status, caught.value.code, caught.value.detail


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize(
    ("value", "words"), [(np.nan, "NaN (not a number)"), (np.inf, "+infinity"), (-np.inf, "-infinity")]
)
def test_a_sample_that_is_not_a_finite_number_is_refused_with_its_second(bits: int, value: float, words: str) -> None:
    assert detail(float_wav(value, bits=bits)) == (
        415,
        "unsupported_audio",
        f"unsupported or corrupt audio: the sample at 0.500 s is {words}{FINITE}",
    )


def test_a_double_past_float32s_range_is_refused_as_infinite() -> None:
    assert (
        detail(float_wav(1e300, bits=64))[2]
        == f"unsupported or corrupt audio: the sample at 0.500 s is +infinity{FINITE}"
    )


def test_what_ffmpeg_decodes_is_checked_as_what_libsndfile_does() -> None:
    data = float_wav(np.nan, fmt_chunks=2)
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.SoundFile(io.BytesIO(data))

    assert detail(data)[2] == f"unsupported or corrupt audio: the sample at 0.500 s is NaN (not a number){FINITE}"


def test_the_second_is_the_files_in_any_block_and_channel() -> None:
    stereo = np.zeros((3 * RATE, 2), dtype="<f4")
    stereo[int(2.25 * RATE), 1] = -np.inf
    data = riff(chunk(b"fmt ", fmt(3, 2, RATE, 32)), chunk(b"data", stereo.tobytes()))

    assert detail(data)[2] == f"unsupported or corrupt audio: the sample at 2.250 s is -infinity{FINITE}"


@pytest.mark.parametrize("peak", [0.9, 1.5])
def test_finite_float_samples_decode_as_they_are(peak: float) -> None:
    data = float_wav(peak)
    held = np.frombuffer(data[data.index(b"data") + 8 :], dtype="<f4")

    decoded = decode_audio(data)

    assert decoded.codec == "pcm_f32le"
    np.testing.assert_array_equal(decoded.samples[0], held)
    assert float(np.max(np.abs(decoded.samples))) == pytest.approx(peak)
