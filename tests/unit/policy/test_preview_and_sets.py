"""A set of samples' report from what its attempt recorded, without a database."""

from __future__ import annotations

import uuid

from backend.domain.attempts import SetMember
from backend.policy.sample_set import report_of


def member(position: int, *, speech_s: float | None, lufs: float | None, pitch: float | None) -> SetMember:
    spectrum = None if pitch is None else [0.0] * 8
    return SetMember(
        sample_id=uuid.uuid4(),
        position=position,
        speech_s=speech_s,
        loudness_lufs=lufs,
        median_pitch_hz=pitch,
        spectrum_db=spectrum,
    )


def test_a_set_unmeasured_yet_counts_its_samples_without_their_traits() -> None:
    report = report_of(
        [member(0, speech_s=4.0, lufs=None, pitch=None), member(1, speech_s=None, lufs=None, pitch=None)]
    )
    assert report.sample_count == 2
    assert not report.measured
    assert report.speech_s == 4.0
    assert report.loudness_spread_lu is None


def test_takes_far_apart_in_loudness_are_warned_of() -> None:
    report = report_of(
        [member(0, speech_s=5.0, lufs=-20.0, pitch=120.0), member(1, speech_s=5.0, lufs=-40.0, pitch=120.0)]
    )
    assert report.measured
    assert report.loudness_spread_lu == 20.0
    assert "loudness_mismatch" in {warning.code for warning in report.warnings}
