"""The consent a sample request must name, and what is kept of where it came from, without a database."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from backend.errors import ConsentRecordingRequired, ConsentRequired
from backend.policy.consent import GivenConsent, Origin, Policy, require_consent

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
