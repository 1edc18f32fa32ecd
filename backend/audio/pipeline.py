"""The audio pipeline: decode (bounded), measure, validate, preprocess. Synchronous and CPU-bound:
callers run it in a worker thread. One sample is decoded at a time and nothing outlives the call.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from backend.audio.decode import DecodedAudio, decode_audio
from backend.audio.errors import NoSpeech, RefusalFacts, SampleClipped, SampleTooShort
from backend.audio.measure import Measurements, measure
from backend.audio.process import preprocess, trim_bounds
from backend.audio.report import QualityReport, Verdict
from backend.providers.base import BACKGROUND_NOISE_SNR_DB, SampleRef, SampleRules

#: Less speech than this (after the VAD) is no speech at all.
MIN_SPEECH_S: Final = 1.0
#: More than this share of samples at full scale is refused; the report carries the ratio below it.
MAX_CLIPPING_RATIO: Final = 0.01
#: Advice thresholds: (minor -> "usable", major -> "poor").
QUIET_LUFS: Final = (-35.0, -50.0)
NOISY_SNR_DB: Final = (BACKGROUND_NOISE_SNR_DB, 15.0)
CLIPPING_RATIO: Final = (1e-4, 1e-3)
SPEECH_RATIO: Final = (0.5, 0.2)
LOW_SAMPLE_RATE: Final = (22050, 16000)
#: Below this many seconds of usable audio, clones come out less like the speaker.
RECOMMENDED_MIN_S: Final = 10.0
MIN_TARGET_RATE: Final = 8000
MAX_TARGET_RATE: Final = 48000


class PreparedSample(msgspec.Struct, frozen=True, kw_only=True):
    """A sample ready for a provider: mono 16-bit PCM WAV at the wanted rate, with its input's report."""

    wav: bytes
    report: QualityReport
    sample_rate: int
    duration_s: float
    sniffed_type: str
    channels: int = 1
    mime_type: str = "audio/wav"
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    #: Where the cleaned copy begins in the upload (the leading silence trimmed), in seconds: a second of the
    #: copy is this much later in the upload.
    start_s: float = 0.0

    def sample_ref(self, *, public_url: str | None = None) -> SampleRef:
        """The prepared audio as the reference a provider adapter takes."""
        return SampleRef(
            data=self.wav,
            mime_type=self.mime_type,
            public_url=public_url,
            duration_s=self.duration_s,
            sample_rate=self.sample_rate,
            channels=self.channels,
            snr_db=self.report.snr_db,
        )


def analyse_bytes(
    data: bytes,
    *,
    max_duration_s: float | None = None,
    min_duration_s: float = 3.0,
    recommended_min_s: float = RECOMMENDED_MIN_S,
) -> QualityReport:
    """Decode ``data`` (its real format sniffed from the bytes), measure and validate it.

    Raises an ``AudioRejected`` subclass for audio that is unsupported or corrupt, too long (for the
    limit or for its size), too short, without speech, or heavily clipped; the refusal carries the
    report whenever decoding got far enough to measure.
    """
    return _analyse(data, max_duration_s, min_duration_s, recommended_min_s)[2]


def prepare_sample(
    data: bytes,
    *,
    target_sample_rate: int,
    min_duration_s: float = 3.0,
    max_duration_s: float | None = None,
    recommended_min_s: float = RECOMMENDED_MIN_S,
) -> PreparedSample:
    """Analyse ``data`` like ``analyse_bytes``, then preprocess it for a provider.

    The output is mono at ``target_sample_rate``, trimmed of leading and trailing silence, noise gated,
    and normalised to -20 LUFS with true peaks at most -1 dBTP (see ``backend.audio.process``).
    """
    if not MIN_TARGET_RATE <= target_sample_rate <= MAX_TARGET_RATE:
        raise ValueError(f"target_sample_rate must be {MIN_TARGET_RATE}-{MAX_TARGET_RATE} Hz")
    decoded, measured, report = _analyse(data, max_duration_s, min_duration_s, recommended_min_s)
    processed = preprocess(measured, target_sample_rate)
    return PreparedSample(
        wav=processed.wav,
        report=report,
        sample_rate=processed.sample_rate,
        duration_s=processed.duration_s,
        sniffed_type=decoded.mime_type,
        loudness_lufs=processed.loudness_lufs,
        true_peak_dbtp=processed.true_peak_dbtp,
        start_s=trim_bounds(measured.speech, measured.duration_s)[0],
    )


def prepare_for(data: bytes, rules: SampleRules) -> PreparedSample:
    """``prepare_sample`` with a provider's rules: its preferred rate and its duration limits."""
    return prepare_sample(
        data,
        target_sample_rate=max(rules.preferred_sample_rate, rules.min_sample_rate or 0),
        min_duration_s=rules.min_duration_s,
        max_duration_s=rules.max_duration_s,
        recommended_min_s=rules.recommended_duration_s[0],
    )


def _analyse(
    data: bytes, max_duration_s: float | None, min_duration_s: float, recommended_min_s: float
) -> tuple[DecodedAudio, Measurements, QualityReport]:
    decoded = decode_audio(data, max_duration_s=max_duration_s)
    measured = measure(decoded)
    start_s, end_s = trim_bounds(measured.speech, measured.duration_s)
    report = _report(decoded, measured, end_s - start_s, recommended_min_s)
    _validate(report, min_duration_s)
    return decoded, measured, report


def _validate(report: QualityReport, min_duration_s: float) -> None:
    """Refuse what no provider can clone from, most basic reason first."""
    facts: RefusalFacts = {"minDurationS": min_duration_s}
    if report.duration_s < min_duration_s:
        raise SampleTooShort(f"sample too short (min {min_duration_s:g} s)", report=report, facts=facts)
    if report.speech_duration_s < MIN_SPEECH_S:
        raise NoSpeech("no speech detected", report=report)
    if report.usable_duration_s < min_duration_s:
        usable = math.floor(report.usable_duration_s * 10) / 10  # never rounded up to the minimum
        raise SampleTooShort(
            f"sample too short (min {min_duration_s:g} s): {usable:.1f} s once silence is trimmed",
            report=report,
            facts=facts,
        )
    if report.clipping_ratio > MAX_CLIPPING_RATIO:
        raise SampleClipped(
            f"sample is clipped: {report.clipping_ratio:.1%} of samples at full scale "
            f"(at most {MAX_CLIPPING_RATIO:.0%} allowed)",
            report=report,
            facts={"clippingRatio": report.clipping_ratio, "maxClippingRatio": MAX_CLIPPING_RATIO},
        )


def _report(decoded: DecodedAudio, measured: Measurements, usable_s: float, recommended_min_s: float) -> QualityReport:
    # (words, severity): 1 is minor ("usable"), 2 major ("poor").
    graded = [
        ("too quiet", _severity(measured.loudness_lufs, QUIET_LUFS)),
        ("background noise", _severity(measured.snr_db, NOISY_SNR_DB)),
        ("clipping", sum(measured.clipping_ratio > limit for limit in CLIPPING_RATIO)),
        ("mostly silence", _severity(measured.speech.ratio, SPEECH_RATIO)),
        ("low sample rate", _severity(measured.sample_rate, LOW_SAMPLE_RATE)),
        ("too short for best results", 1 if usable_s < recommended_min_s else 0),
    ]
    advice = [(words, severity) for words, severity in graded if severity]
    verdict: Verdict = ("good", "usable", "poor")[max((severity for _, severity in advice), default=0)]
    return QualityReport(
        mime_type=decoded.mime_type,
        codec=decoded.codec,
        duration_s=round(measured.duration_s, 3),
        sample_rate=measured.sample_rate,
        channels=measured.channels,
        loudness_lufs=_round(measured.loudness_lufs, 2),
        sample_peak_dbfs=_round(measured.sample_peak_dbfs, 2),
        true_peak_dbtp=_round(measured.true_peak_dbtp, 2),
        snr_db=_round(measured.snr_db, 1),
        speech_ratio=round(measured.speech.ratio, 3),
        speech_duration_s=round(measured.speech.seconds, 2),
        clipping_ratio=round(measured.clipping_ratio, 6),
        usable_duration_s=round(usable_s, 3),
        verdict=verdict,
        advice=tuple(words for words, _ in advice),
    )


def _severity(value: float | None, limits: tuple[float, float]) -> int:
    """0 when ``value`` is at or above the minor limit, 1 below it, 2 below the major one; 0 when unmeasured."""
    if value is None or value >= limits[0]:
        return 0
    return 2 if value < limits[1] else 1


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


__all__ = ["PreparedSample", "analyse_bytes", "prepare_for", "prepare_sample"]
