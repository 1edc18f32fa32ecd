"""A consent's states, and which of them take a recording or cover a sample: the one state machine of a consent.

The database reads the state (`public.voice_consent_state`, migration 20261126190500_consent_state) the same way
for every query, and guards every write with it; this module says what each state allows:

    (a ticked box)            -> accepted
    (POST /api/v1/consents)   -> awaiting_recording
    awaiting_recording, rejected --a recording that says the phrase-->       verified
    awaiting_recording, rejected --a recording that does not-->              rejected
    awaiting_recording, rejected --the phrase's time passes-->               expired   (read from the clock)
    awaiting_recording, rejected --a recording of another account's voice--> held      (docs/ownership.md)
    held                         --an operator releases it-->                verified
    held                         --an operator refuses it-->                 rejected  (ownership_refused)
    verified                     --the evidence's retention ends (sweep)-->  purged

Refused: a recording of an expired consent (422 `consent_expired`, before its audio is read), and of an accepted,
verified or purged one (409: it takes no recording); a sample under any consent but a verified one (422
`consent_expired` for an expired or purged one, `consent_not_verified` for the others). A recording judged
while its phrase's time ran out is refused as expired too: its verdict is written under the state it finds.
"""

from __future__ import annotations

from typing import Final, Literal

from backend.errors import Conflict, ConsentExpired, ConsentNotVerified

State = Literal["accepted", "awaiting_recording", "rejected", "expired", "verified", "held", "purged"]

#: The states a recording of the phrase is taken in, and so the states `verified` and `rejected` are entered from.
RECORDABLE: Final[frozenset[State]] = frozenset({"awaiting_recording", "rejected"})


def check_recordable(state: State) -> None:
    """Refuse a recording of a consent in `state` unless it is `RECORDABLE`: ConsentExpired for an expired one,
    Conflict for one that takes no recording (a checkbox consent, or a verified one, purged or not)."""
    if state in RECORDABLE:
        return
    if state == "expired":
        raise ConsentExpired("The consent's phrase has expired: get a new phrase (POST /api/v1/consents) and read it.")
    if state == "held":
        raise Conflict("This consent takes no recording: it is held for review.")
    raise Conflict("This consent takes no recording: it is a checkbox consent, or its recording is verified.")


def check_covers_sample(state: State) -> None:
    """Refuse a sample named under a consent in `state` unless it is verified: ConsentExpired for an expired or
    purged one, ConsentNotVerified for one not verified yet, or a checkbox one (given with each upload instead)."""
    if state == "verified":
        return
    if state in {"expired", "purged"}:
        raise ConsentExpired
    if state == "accepted":
        raise ConsentNotVerified("A checkbox consent is given with each upload (consent=true), not named by its id.")
    if state == "held":
        raise ConsentNotVerified("The consent is held for review.")
    raise ConsentNotVerified
