"""The quality report: what was measured on an uploaded sample, and what it means in plain words.

Stored with the sample, returned by its status route, and carried by a refusal (`AudioRejected`).
"""

from __future__ import annotations

from typing import Literal

import msgspec

Verdict = Literal["good", "usable", "poor"]


class QualityReport(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What was measured on an uploaded sample, and what it means in plain words."""

    mime_type: str
    codec: str
    duration_s: float
    sample_rate: int
    channels: int
    #: EBU R128 integrated loudness; None when the sample is silent or under 0.4 s.
    loudness_lufs: float | None
    sample_peak_dbfs: float | None
    #: 4x oversampled (ITU-R BS.1770) peak.
    true_peak_dbtp: float | None
    #: Speech power over the noise in the pauses (or the quietest frames); None without speech.
    snr_db: float | None
    speech_ratio: float
    speech_duration_s: float
    #: Share of samples at or beyond -0.09 dBFS.
    clipping_ratio: float
    #: Length left once leading and trailing silence are trimmed: what a provider would receive.
    usable_duration_s: float
    verdict: Verdict
    advice: tuple[str, ...]
