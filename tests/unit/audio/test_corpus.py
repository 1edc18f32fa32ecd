"""Every corpus file gets its expected verdict, or is refused with its expected code and message."""

from __future__ import annotations

import msgspec
import pytest

from backend.audio.errors import AudioRejected
from backend.audio.pipeline import analyse_bytes
from backend.audio.report import QualityReport
from backend.http.pipeline.problem import problem_for
from devkit.audio_corpus import RATE, encode, speech_mono, wav_bytes

# name -> (sniffed container, codec, verdict, advice) for the files that are accepted.
ACCEPTED = {
    "speech.wav": ("audio/wav", "pcm_s16le", "good", ()),
    "speech_44k_stereo_24bit.wav": ("audio/wav", "pcm_s32le", "good", ()),
    "speech.flac": ("audio/flac", "flac", "good", ()),
    "speech.mp3": ("audio/mpeg", "mp3float", "good", ()),
    "speech.ogg": ("audio/ogg", "opus", "good", ()),
    "speech.webm": ("audio/webm", "opus", "good", ()),
    "speech.m4a": ("audio/mp4", "aac", "good", ()),
    "speech_noisy.wav": ("audio/wav", "pcm_s16le", "poor", ("background noise",)),
    "speech_quiet.wav": ("audio/wav", "pcm_s16le", "poor", ("too quiet",)),
}

# name -> (code, HTTP status, start of the message) for the files that are refused.
REFUSED = {
    "speech_clipped.wav": ("clipping", 422, "sample is clipped: 9."),
    "speech_short.wav": ("sample_too_short", 422, "sample too short"),
    "speech_truncated.wav": ("unsupported_audio", 415, "unsupported or corrupt audio: the file is truncated"),
    "tone.wav": ("no_speech", 422, "no speech detected"),
    "white_noise.wav": ("no_speech", 422, "no speech detected"),
    "silence.wav": ("no_speech", 422, "no speech detected"),
    "digital_silence.flac": ("no_speech", 422, "no speech detected"),
    "truncated.m4a": ("unsupported_audio", 415, "unsupported or corrupt audio"),
    "corrupt.ogg": ("unsupported_audio", 415, "unsupported or corrupt audio"),
    "corrupt.mp3": ("unsupported_audio", 415, "unsupported or corrupt audio"),
    "text.wav": ("unsupported_audio", 415, "unsupported or corrupt audio: not a WAV"),
    "video.webm": ("unsupported_audio", 415, "unsupported or corrupt audio: the file contains video"),
    "claims_hours.wav": ("audio_too_long_for_size", 422, "audio too long for its size: the header claims 10800.0 s"),
    "bomb.flac": ("audio_too_long_for_size", 422, "audio too long for its size: the file claims 3600.0 s"),
    "bomb_unknown_length.flac": ("audio_too_long_for_size", 422, "audio too long for its size: the file decodes"),
}


def test_the_corpus_is_fully_covered(corpus: dict[str, bytes]) -> None:
    assert set(corpus) == set(ACCEPTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_files_get_their_verdict(corpus: dict[str, bytes], name: str) -> None:
    mime, codec, verdict, advice = ACCEPTED[name]
    report = analyse_bytes(corpus[name], max_duration_s=60.0, recommended_min_s=10.0)
    assert (report.mime_type, report.codec, report.verdict, report.advice) == (mime, codec, verdict, advice)
    assert report.duration_s == pytest.approx(14.5, abs=0.9)
    assert report.usable_duration_s == pytest.approx(report.duration_s - 1.6, abs=0.3)
    assert report.speech_ratio > 0.7
    assert report.clipping_ratio == 0.0


def test_the_report_describes_the_recording(corpus: dict[str, bytes]) -> None:
    clean = analyse_bytes(corpus["speech.wav"])
    assert (clean.sample_rate, clean.channels) == (48000, 1)
    assert clean.loudness_lufs == pytest.approx(-20.6, abs=1.0)
    assert clean.sample_peak_dbfs is not None
    assert clean.true_peak_dbtp is not None
    assert -3.0 < clean.sample_peak_dbfs <= clean.true_peak_dbtp < 0.0
    assert clean.snr_db is not None
    assert clean.snr_db > 45.0
    stereo = analyse_bytes(corpus["speech_44k_stereo_24bit.wav"])
    assert (stereo.sample_rate, stereo.channels) == (44100, 2)
    quiet = analyse_bytes(corpus["speech_quiet.wav"])
    assert quiet.loudness_lufs == pytest.approx(clean.loudness_lufs - 40.0, abs=0.5)
    noisy = analyse_bytes(corpus["speech_noisy.wav"])
    assert noisy.snr_db is not None
    assert 5.0 < noisy.snr_db < 20.0


def test_the_report_is_camel_case_json(corpus: dict[str, bytes]) -> None:
    report = analyse_bytes(corpus["speech.webm"])
    body = msgspec.json.decode(msgspec.json.encode(report))
    assert {"durationS", "sampleRate", "loudnessLufs", "truePeakDbtp", "snrDb", "speechRatio", "clippingRatio"} <= set(
        body
    )
    assert body["verdict"] == "good"
    assert msgspec.json.decode(msgspec.json.encode(report), type=QualityReport) == report


def test_short_samples_are_judged_against_the_recommended_length(corpus: dict[str, bytes]) -> None:
    report = analyse_bytes(corpus["speech.wav"], recommended_min_s=20.0)
    assert (report.verdict, report.advice) == ("usable", ("too short for best results",))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_files_get_their_code(corpus: dict[str, bytes], name: str) -> None:
    code, status, message = REFUSED[name]
    with pytest.raises(AudioRejected) as caught:
        analyse_bytes(corpus[name])
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.detail.startswith(message)
    problem, _ = problem_for(caught.value, "/x")
    assert (problem.status, problem.code, problem.detail) == (status, code, caught.value.detail)


@pytest.mark.parametrize(
    ("name", "verdict"), [("speech_clipped.wav", "poor"), ("tone.wav", "poor"), ("speech_short.wav", "usable")]
)
def test_refusals_after_measuring_carry_the_report(corpus: dict[str, bytes], name: str, verdict: str) -> None:
    with pytest.raises(AudioRejected) as caught:
        analyse_bytes(corpus[name])
    assert caught.value.report is not None
    assert caught.value.report.verdict == verdict
    quality = problem_for(caught.value, "/x")[0].extensions["quality"]
    assert isinstance(quality, dict)
    assert quality["verdict"] == verdict


def test_clipping_is_refused_with_its_ratio(corpus: dict[str, bytes]) -> None:
    with pytest.raises(AudioRejected) as caught:
        analyse_bytes(corpus["speech_clipped.wav"])
    report = caught.value.report
    assert report is not None
    assert 0.05 < report.clipping_ratio < 0.2
    assert f"{report.clipping_ratio:.1%}" in caught.value.detail
    assert caught.value.facts["clippingRatio"] == report.clipping_ratio


def test_too_long_names_the_limit(corpus: dict[str, bytes]) -> None:
    with pytest.raises(AudioRejected) as caught:
        analyse_bytes(corpus["speech.ogg"], max_duration_s=10.0)
    assert (caught.value.code, caught.value.detail) == ("sample_too_long", "sample too long (max 10 s)")
    assert caught.value.facts["maxDurationS"] == 10.0


def test_the_minimum_duration_is_the_callers(corpus: dict[str, bytes]) -> None:
    with pytest.raises(AudioRejected) as caught:
        analyse_bytes(corpus["speech.flac"], min_duration_s=20.0)
    assert (caught.value.code, caught.value.detail) == ("sample_too_short", "sample too short (min 20 s)")


@pytest.mark.parametrize("container", ["wav", "webm"])
@pytest.mark.parametrize("seed", range(6))
def test_a_one_second_clip_of_speech_alone_gets_no_silence_or_noise_advice(container: str, seed: int) -> None:
    clip = speech_mono(1.0, seed=seed)[:RATE]
    data = wav_bytes(clip) if container == "wav" else encode(clip, RATE, "webm", "libopus", bit_rate=32000)
    with pytest.raises(AudioRejected) as caught:
        analyse_bytes(data)
    report = caught.value.report
    assert report is not None
    assert caught.value.code == "sample_too_short"
    assert report.speech_ratio > 0.75
    # Nothing but speech: no pause to measure noise in, and not silence.
    assert report.snr_db is None
    assert "mostly silence" not in report.advice
    assert "background noise" not in report.advice
