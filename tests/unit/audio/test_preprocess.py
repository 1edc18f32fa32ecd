"""Preprocessing, measured on the output file: mono 16-bit WAV at the provider's rate, trimmed,
denoised, at the loudness target and under the peak ceiling."""

from __future__ import annotations

import io
import math
import tracemalloc
import wave

import numpy as np
import numpy.typing as npt
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from backend.audio import process
from backend.audio.errors import AudioRejected
from backend.audio.pipeline import analyse_bytes, prepare_for, prepare_sample
from backend.audio.process import PEAK_CEILING_DBTP, TARGET_LUFS, TRIM_PAD_S
from backend.providers.registry import sample_rules
from devkit.audio_corpus import LEAD_S, recording, speech_mono

F64 = npt.NDArray[np.float64]


def read_output(data: bytes) -> tuple[F64, int, int, int]:
    """Samples in [-1, 1], sample rate, channels and sample width of a WAV, read with the standard library."""
    with wave.open(io.BytesIO(data), "rb") as src:
        rate, channels, width = src.getframerate(), src.getnchannels(), src.getsampwidth()
        frames = src.readframes(src.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0, rate, channels, width


def edges_s(signal: F64, rate: int, threshold_dbfs: float = -45.0) -> tuple[float, float]:
    """Seconds of near-silence at the start and at the end (10 ms frames under ``threshold_dbfs``)."""
    hop = rate // 100
    frames = signal[: signal.size // hop * hop].reshape(-1, hop)
    loud = np.nonzero(10 * np.log10(np.mean(frames**2, axis=1) + 1e-20) > threshold_dbfs)[0]
    return loud[0] * 0.01, (frames.shape[0] - 1 - loud[-1]) * 0.01


def dbfs(linear: float) -> float:
    return 20 * math.log10(linear)


@pytest.mark.parametrize("provider", ["qwen", "elevenlabs", "cartesia", "local"])
@pytest.mark.parametrize("name", ["speech.wav", "speech_44k_stereo_24bit.wav", "speech.webm"])
def test_output_is_what_the_provider_wants(corpus: dict[str, bytes], name: str, provider: str) -> None:
    rules = sample_rules(provider)
    prepared = prepare_for(corpus[name], rules)
    signal, rate, channels, width = read_output(prepared.wav)
    assert (rate, channels, width) == (rules.preferred_sample_rate, 1, 2)
    assert (prepared.sample_rate, prepared.channels, prepared.duration_s) == (rate, 1, signal.size / rate)
    assert pyloudnorm.Meter(rate).integrated_loudness(signal) == pytest.approx(TARGET_LUFS, abs=1.0)
    assert dbfs(float(np.max(np.abs(signal)))) <= PEAK_CEILING_DBTP
    assert dbfs(float(np.max(np.abs(resample_poly(signal, 4, 1))))) <= PEAK_CEILING_DBTP
    lead, trail = edges_s(signal, rate)
    assert lead <= TRIM_PAD_S + 0.1
    assert trail <= TRIM_PAD_S + 0.15
    assert prepared.duration_s == pytest.approx(prepared.report.duration_s - 2 * LEAD_S + 2 * TRIM_PAD_S, abs=0.3)
    assert not rules.violations([prepared.sample_ref()])


def test_the_report_is_the_uploads_and_the_type_its_sniffed_one(corpus: dict[str, bytes]) -> None:
    prepared = prepare_sample(corpus["speech.m4a"], target_sample_rate=24000)
    assert prepared.report == analyse_bytes(corpus["speech.m4a"])
    assert (prepared.sniffed_type, prepared.report.codec, prepared.report.sample_rate) == ("audio/mp4", "aac", 48000)
    assert prepared.loudness_lufs == pytest.approx(TARGET_LUFS, abs=0.5)
    assert prepared.true_peak_dbtp is not None
    assert prepared.true_peak_dbtp <= PEAK_CEILING_DBTP
    ref = prepared.sample_ref(public_url="https://example.test/s.wav")
    assert (ref.mime_type, ref.sample_rate, ref.channels, ref.public_url) == (
        "audio/wav",
        24000,
        1,
        "https://example.test/s.wav",
    )


def test_noise_is_reduced(corpus: dict[str, bytes]) -> None:
    prepared = prepare_sample(corpus["speech_noisy.wav"], target_sample_rate=24000)
    before, after = prepared.report, analyse_bytes(prepared.wav)
    assert before.snr_db is not None
    assert after.snr_db is not None
    assert after.snr_db >= before.snr_db + 8.0
    assert after.speech_ratio >= before.speech_ratio


def test_a_quiet_take_is_brought_up_to_the_target(corpus: dict[str, bytes]) -> None:
    prepared = prepare_sample(corpus["speech_quiet.wav"], target_sample_rate=16000)
    signal, rate, _, _ = read_output(prepared.wav)
    assert rate == 16000
    assert pyloudnorm.Meter(rate).integrated_loudness(signal) == pytest.approx(TARGET_LUFS, abs=1.0)
    assert analyse_bytes(prepared.wav).advice == ("low sample rate",)


@pytest.mark.parametrize(
    ("name", "code"),
    [("speech_short.wav", "sample_too_short"), ("silence.wav", "no_speech"), ("text.wav", "unsupported_audio")],
)
def test_preparing_refuses_what_analysis_refuses(corpus: dict[str, bytes], name: str, code: str) -> None:
    with pytest.raises(AudioRejected) as caught:
        prepare_sample(corpus[name], target_sample_rate=24000)
    assert caught.value.code == code


def test_preparing_applies_the_duration_limits(corpus: dict[str, bytes]) -> None:
    with pytest.raises(AudioRejected) as caught:
        prepare_sample(corpus["speech.flac"], target_sample_rate=24000, max_duration_s=10.0)
    assert caught.value.code == "sample_too_long"
    with pytest.raises(AudioRejected) as caught:
        prepare_sample(corpus["speech.flac"], target_sample_rate=24000, min_duration_s=13.0)
    assert caught.value.detail == "sample too short (min 13 s): 12.9 s once silence is trimmed"


def test_an_impossible_target_rate_is_a_programming_error(corpus: dict[str, bytes]) -> None:
    with pytest.raises(ValueError, match="target_sample_rate"):
        prepare_sample(corpus["speech.wav"], target_sample_rate=96000)


def _speech_in_noise(seconds: float, rate: int) -> npt.NDArray[np.float32]:
    return recording(speech_mono(seconds, rate), rate).astype(np.float32)


def test_noise_gating_in_chunks_matches_gating_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    rate = 24000
    signal = _speech_in_noise(12.0, rate)
    pauses = signal[:rate]
    assert signal.size > 2 * process.NOISE_CHUNK_S * rate  # at least two seams

    chunked = process.reduce_noise(signal, rate, pauses)
    monkeypatch.setattr(process, "NOISE_CHUNK_S", 1000.0)
    whole = process.reduce_noise(signal, rate, pauses)

    difference = float(np.sqrt(np.mean((chunked - whole) ** 2)))
    # Under -40 dB of the signal: no seam, no lost or doubled chunk.
    assert difference < 0.01 * float(np.sqrt(np.mean(whole**2)))


def test_noise_gating_memory_does_not_grow_with_the_length() -> None:
    rate = 24000
    minute = np.tile(_speech_in_noise(6.0, rate), 10)

    tracemalloc.start()
    try:
        process.reduce_noise(minute, rate, minute[:rate])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Gated whole, a minute at 24 kHz needs about 230 MB; in 5 s chunks, under 60 MB.
    assert peak < 60e6
