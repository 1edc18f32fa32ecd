"""Measurements of a decoded sample: loudness, peaks, clipping, speech (VAD) and an SNR estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyloudnorm
import webrtcvad
from scipy.signal import firwin, resample_poly, upfirdn

from backend.audio.decode import DecodedAudio

F32 = npt.NDArray[np.float32]

#: WebRTC VAD works on 10/20/30 ms frames of 16-bit PCM at 8/16/32/48 kHz.
VAD_RATE: Final = 16000
VAD_FRAME_S: Final = 0.03
VAD_FRAME: Final = int(VAD_RATE * VAD_FRAME_S)
#: 0 (least) to 3 (most aggressive at refusing non-speech).
VAD_MODE: Final = 2
#: The VAD judges by absolute level and misses quiet speech, so its input is brought to this loudness
#: (the 99th-percentile frame RMS), amplifying by at most ``VAD_MAX_GAIN_DB``.
VAD_LEVEL_DBFS: Final = -20.0
VAD_MAX_GAIN_DB: Final = 40.0
#: The VAD takes steady tones and loud steady noise for speech. Speech varies in level from frame to
#: frame by many dB (syllables, consonants, pauses), even at 0 dB SNR; steady sounds by a fraction of one.
SPEECH_LEVEL_SPREAD_DB: Final = 1.0
#: Shortest run of speech frames (120 ms) that can start or end the speech span.
MIN_SPEECH_RUN: Final = 4
#: A sample at or above this magnitude (-0.09 dBFS) counts as clipped.
CLIP_LEVEL: Final = 0.99
TRUE_PEAK_OVERSAMPLING: Final = 4
#: A 48-tap (12 per phase) interpolation filter, the length ITU-R BS.1770-4 Annex 2 uses for 4x.
_TRUE_PEAK_FILTER: Final = (firwin(48, 1 / TRUE_PEAK_OVERSAMPLING, window=("kaiser", 6.0)) * 4).astype(np.float32)
_TRUE_PEAK_DELAY: Final = (_TRUE_PEAK_FILTER.size - 1) // 2
#: Noise is taken from the pauses when there are this many seconds of them, else from the quietest frames.
MIN_PAUSE_S: Final = 0.3
QUIET_FRAME_SHARE: Final = 0.1
#: Without pauses, the quietest frames stand for the noise only in this much audio: in a shorter clip
#: that is all speech they are the speech's own soft sounds, and the SNR would be made up.
MIN_QUIET_SAMPLE_S: Final = 3.0
_POWER_FLOOR: Final = 1e-10  # -100 dBFS: digital silence
SNR_CEILING_DB: Final = 100.0


@dataclass(frozen=True, slots=True)
class Speech:
    """VAD result on 30 ms frames: which frames hold speech, and each frame's power (unnormalised)."""

    frames: npt.NDArray[np.bool_]
    power: npt.NDArray[np.float64]

    @property
    def seconds(self) -> float:
        """Seconds of speech."""
        return float(self.frames.sum()) * VAD_FRAME_S

    @property
    def ratio(self) -> float:
        """Share of frames that hold speech."""
        return float(self.frames.mean()) if self.frames.size else 0.0

    def span_s(self) -> tuple[float, float] | None:
        """Start of the first and end of the last run of speech, or None without speech.

        Runs shorter than ``MIN_SPEECH_RUN`` frames do not count: the VAD flags a few frames at the very
        start of noisy audio while it adapts, and clicks or breaths can trip it.
        """
        edges = np.diff(np.concatenate([[0], self.frames.astype(np.int8), [0]]))
        (starts,) = np.nonzero(edges == 1)
        (ends,) = np.nonzero(edges == -1)
        runs = [(start, end) for start, end in zip(starts, ends, strict=True) if end - start >= MIN_SPEECH_RUN]
        if not runs:
            return None
        return float(runs[0][0]) * VAD_FRAME_S, float(runs[-1][1]) * VAD_FRAME_S


@dataclass(frozen=True, slots=True)
class Measurements:
    """Everything the quality report and the validation need, measured once."""

    duration_s: float
    sample_rate: int
    channels: int
    loudness_lufs: float | None
    sample_peak_dbfs: float | None
    true_peak_dbtp: float | None
    snr_db: float | None
    clipping_ratio: float
    speech: Speech
    mono: F32


def measure(audio: DecodedAudio) -> Measurements:
    """Measure a decoded sample (the samples are read, never changed)."""
    mono = downmix(audio.samples)
    speech = detect_speech(mono, audio.sample_rate)
    return Measurements(
        duration_s=audio.duration_s,
        sample_rate=audio.sample_rate,
        channels=audio.channels,
        loudness_lufs=integrated_loudness(audio.samples, audio.sample_rate),
        sample_peak_dbfs=_dbfs(float(np.max(np.abs(audio.samples)))),
        true_peak_dbtp=_dbfs(true_peak(audio.samples)),
        snr_db=snr_estimate(speech),
        clipping_ratio=float(np.count_nonzero(np.abs(audio.samples) >= CLIP_LEVEL)) / audio.samples.size,
        speech=speech,
        mono=mono,
    )


def downmix(samples: F32) -> F32:
    """Mono as the mean of the channels."""
    if samples.shape[0] == 1:
        return np.asarray(samples[0], dtype=np.float32)
    return np.asarray(samples.mean(axis=0, dtype=np.float32), dtype=np.float32)


def resample(mono: F32, rate: int, target: int) -> F32:
    """Polyphase resampling of mono float32 audio (a no-op at the same rate)."""
    if rate == target:
        return mono
    common = math.gcd(rate, target)
    return np.asarray(resample_poly(mono, target // common, rate // common), dtype=np.float32)


def detect_speech(mono: F32, rate: int) -> Speech:
    """Frames of speech by WebRTC VAD, with steady tones and noise (which fool it) counted as none."""
    at_vad_rate = resample(mono, rate, VAD_RATE)
    count = at_vad_rate.size // VAD_FRAME
    frames = at_vad_rate[: count * VAD_FRAME].reshape(count, VAD_FRAME).astype(np.float64)
    power = np.mean(np.square(frames), axis=1)
    if count == 0:
        return Speech(frames=np.zeros(0, dtype=np.bool_), power=power)
    loud = float(np.percentile(power, 99))
    gain_db = min(VAD_LEVEL_DBFS - 10 * math.log10(max(loud, _POWER_FLOOR)), VAD_MAX_GAIN_DB)
    pcm = np.clip(frames * 10 ** (gain_db / 20) * 32767.0, -32768, 32767).astype("<i2")
    vad = webrtcvad.Vad(VAD_MODE)
    labels = np.fromiter((vad.is_speech(row.tobytes(), VAD_RATE) for row in pcm), dtype=np.bool_, count=count)
    if labels.any():
        level_db = 10 * np.log10(np.maximum(power[labels], _POWER_FLOOR))
        if float(np.std(level_db)) < SPEECH_LEVEL_SPREAD_DB:
            labels[:] = False
    return Speech(frames=labels, power=power)


def snr_estimate(speech: Speech) -> float | None:
    """Speech-to-noise ratio in dB: speech frames against the pauses (or, in a long enough clip without
    pauses, the quietest frames); None when there is no speech or nothing to take the noise from."""
    if not speech.frames.any():
        return None
    pauses = speech.power[~speech.frames]
    if pauses.size * VAD_FRAME_S >= MIN_PAUSE_S:
        noise = float(np.median(pauses))
    elif speech.power.size * VAD_FRAME_S < MIN_QUIET_SAMPLE_S:
        return None
    else:
        quietest = np.sort(speech.power)[: max(1, int(speech.power.size * QUIET_FRAME_SHARE))]
        noise = float(np.mean(quietest))
    signal = float(np.mean(speech.power[speech.frames])) - noise
    noise = max(noise, _POWER_FLOOR)
    snr = 10 * math.log10(max(signal, _POWER_FLOOR) / noise)
    return min(snr, SNR_CEILING_DB)


def integrated_loudness(samples: F32, rate: int) -> float | None:
    """EBU R128 / ITU-R BS.1770-4 integrated loudness in LUFS; None for silence or under one 400 ms block."""
    if samples.shape[1] <= rate * 0.4:
        return None
    loudness = float(pyloudnorm.Meter(rate).integrated_loudness(samples.T.astype(np.float64)))
    return loudness if math.isfinite(loudness) else None


def true_peak(samples: F32) -> float:
    """Largest magnitude after 4x oversampling (BS.1770 true peak) over all channels, linear."""
    return max((float(np.max(peak_envelope(channel), initial=0.0)) for channel in samples), default=0.0)


def peak_envelope(signal: F32) -> F32:
    """For each sample, the largest magnitude among the 4x oversampled points from it to the next."""
    upsampled = np.abs(np.asarray(upfirdn(_TRUE_PEAK_FILTER, signal, up=TRUE_PEAK_OVERSAMPLING), dtype=np.float32))
    aligned = upsampled[_TRUE_PEAK_DELAY : _TRUE_PEAK_DELAY + signal.size * TRUE_PEAK_OVERSAMPLING]
    points = aligned.reshape(signal.size, TRUE_PEAK_OVERSAMPLING)
    # Column by column: numpy's `max(axis=1)` over rows of four is a strided reduction per row, much slower than
    # these elementwise maxima (the same values: a maximum is exact).
    envelope = points[:, 0].copy()
    for column in range(1, TRUE_PEAK_OVERSAMPLING):
        np.maximum(envelope, points[:, column], out=envelope)
    return envelope


def _dbfs(linear: float) -> float | None:
    return 20 * math.log10(linear) if linear > 0 else None
