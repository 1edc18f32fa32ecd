"""The consent a sample request must name, what is kept of where it came from, and whether a sample's speaker is
its consent's, without a database."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import numpy.typing as npt
import pytest

from backend.errors import ConsentRecordingRequired, ConsentRequired
from backend.policy.consent import GivenConsent, Origin, Policy, SpeakerJudgement, judge_speaker, require_consent
from backend.voiceprint import DIMENSIONS, SpeechPrints, Voiceprint

ORIGIN = Origin(user_agent="a browser", client_ip="203.0.113.9")


def given(*, checkbox: bool, consent_id: uuid.UUID | None, policy: Policy) -> GivenConsent:
    return GivenConsent(checkbox=checkbox, consent_id=consent_id, subject_name="Ada", origin=ORIGIN, policy=policy)


def test_a_named_consent_passes_under_either_policy() -> None:
    for policy in ("checkbox", "spoken"):
        require_consent(given(checkbox=False, consent_id=uuid.uuid4(), policy=policy))


def test_a_ticked_box_passes_only_under_the_checkbox_policy() -> None:
    require_consent(given(checkbox=True, consent_id=None, policy="checkbox"))
    with pytest.raises(ConsentRecordingRequired):
        require_consent(given(checkbox=True, consent_id=None, policy="spoken"))


def test_neither_a_box_nor_a_consent_is_refused() -> None:
    with pytest.raises(ConsentRequired):
        require_consent(given(checkbox=False, consent_id=None, policy="checkbox"))


def test_the_origin_keeps_a_hash_of_the_address_and_a_short_user_agent() -> None:
    assert ORIGIN.recorded() == {
        "user_agent": "a browser",
        "ip_hash": hashlib.sha256(b"203.0.113.9").hexdigest(),
    }
    assert Origin(user_agent="x" * 2000, client_ip=None).recorded() == {"user_agent": "x" * 1000, "ip_hash": None}
    assert Origin(user_agent="", client_ip="").recorded() == {"user_agent": None, "ip_hash": None}


def _unit(axis: int) -> npt.NDArray[np.float32]:
    vector = np.zeros(DIMENSIONS, dtype=np.float32)
    vector[axis] = 1.0
    return vector


def _prints(*axes: int) -> SpeechPrints:
    """A recording whose partials (one second each) are the voices on `axes`, in order."""
    return SpeechPrints([_unit(axis) for axis in axes], [(i, i + 1.0) for i in range(len(axes))])


CONSENT = Voiceprint(_unit(0))


def test_a_sample_of_the_consents_voice_matches_it() -> None:
    judged = judge_speaker(CONSENT, _prints(*[0] * 12))
    assert judged.matched
    assert judged.score == pytest.approx(1.0)
    assert judged.unlike == ()


def test_another_voice_throughout_is_refused_wholly() -> None:
    judged = judge_speaker(CONSENT, _prints(*[1] * 12))
    assert not judged.matched
    assert judged.wholly
    assert judged.score == pytest.approx(0.0)


def test_another_voice_spliced_after_the_consents_is_refused_whatever_the_whole_score() -> None:
    judged = judge_speaker(CONSENT, _prints(*[0] * 24, *[1] * 8))
    assert not judged.matched
    assert judged.unlike
    assert not judged.wholly


def test_a_sample_without_speech_enough_matches_nobody() -> None:
    assert judge_speaker(CONSENT, None) == SpeakerJudgement(score=0.0, matched=False)


def test_once_the_consents_evidence_is_purged_only_an_earlier_judgement_stands() -> None:
    assert judge_speaker(None, _prints(0, 0)) == SpeakerJudgement(score=0.0, matched=False)
    assert judge_speaker(None, None, judged_before=0.9) == SpeakerJudgement(score=0.9, matched=True)
    assert judge_speaker(None, None, judged_before=0.3) == SpeakerJudgement(score=0.3, matched=False)
