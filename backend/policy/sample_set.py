"""A set of samples as its owner reads it: the quality report of the set, from what its clone attempt recorded
of each sample (the clone worker measures them: `backend.clone.set_members`)."""

from __future__ import annotations

from collections.abc import Sequence

from backend.audio.voice_set import Member, SetReport, Traits, set_report
from backend.domain.attempts import SetMember


def report_of(members: Sequence[SetMember]) -> SetReport:
    """The set's report from what its attempt recorded (unmeasured samples count without their traits)."""
    return set_report(
        [
            Member(
                sample_id=str(m.sample_id),
                speech_s=m.speech_s,
                loudness_lufs=m.loudness_lufs,
                traits=None
                if m.median_pitch_hz is None and m.spectrum_db is None
                else Traits(median_pitch_hz=m.median_pitch_hz, spectrum_db=m.spectrum_db),
            )
            for m in members
        ]
    )
