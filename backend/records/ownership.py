"""The voice ownership registry: every verified consent's voiceprint and every ready sample's, with its owner
(`voicegate.voice_prints`, indexed by pgvector's HNSW for cosine search), and the holds of consents and samples
whose voice matched another account's (`voicegate.ownership_holds`). Both are the service's alone.

A new consent reading or sample is compared with every other owner's prints, never with its own owner's (`judge`);
at or above the threshold it is held for an operator's review, or refused, as VOICEGATE_VOICE_OWNERSHIP says.
An operator lists the holds and releases or refuses each (`voicegate ops voice-holds`, `decide`). docs/ownership.md
says what is compared, why, what a held user sees and how an operator decides.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from backend.db.audit import record_audit
from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.queries import load_queries

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: VOICEGATE_VOICE_OWNERSHIP: hold a match for review, refuse it at once, or compare nothing.
Mode = Literal["hold", "refuse", "off"]
#: What a comparison decided: nothing matched (or an operator released this voice), held, or refused.
Verdict = Literal["clear", "held", "refused"]
HoldState = Literal["held", "released", "refused"]
#: The failure reason of a sample refused for its voice's owner: the same words whatever matched.
SAMPLE_REFUSAL: Final = "ownership_refused: this voice cannot be accepted for this account"
#: A stored voiceprint: 192 little-endian float32 (backend.voiceprint.DIMENSIONS; records import no area).
_PRINT_BYTES: Final = 768


class Match(msgspec.Struct, frozen=True):
    """Another owner's print that a new print matched, and how well (cosine)."""

    owner_id: uuid.UUID
    consent_id: uuid.UUID | None
    sample_id: uuid.UUID | None
    score: float


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """A hold as an operator sees it: the held consent or sample and its account, the account it matched and
    what of theirs, the score and the threshold, and its decision."""

    id: uuid.UUID
    state: HoldState
    subject: Literal["consent", "sample"]
    subject_id: uuid.UUID
    owner_id: uuid.UUID
    #: None once the matched account is erased.
    matched_owner_id: uuid.UUID | None
    matched_subject: Literal["consent", "sample"]
    matched_subject_id: uuid.UUID | None
    score: float
    threshold: float
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None
    #: When retention purged a held consent's recording and print (None for a sample, or while they are kept):
    #: nothing is left to listen to, and a release registers no print.
    evidence_purged_at: datetime | None


class HoldNotFound(LookupError):
    """No hold has that id."""


class HoldDecided(RuntimeError):
    """The hold was released or refused already."""


def vector_literal(vector: npt.ArrayLike) -> str:
    """A print as pgvector's text form, `[v1,v2,...]`, exact for float32 values."""
    return "[" + ",".join(repr(float(v)) for v in np.asarray(vector, dtype=np.float32)) + "]"


async def best_other(conn: Connection, owner_id: uuid.UUID, vector: npt.ArrayLike) -> Match | None:
    """The print of another owner nearest `vector` (None when the registry holds none of another owner), on
    `conn`'s service transaction. The search's settings and the search go in one pipeline: one round trip."""
    async with conn.pipeline():
        await conn.execute(_Q["search_settings"])
        found = await conn.execute(_Q["best_other"], {"owner_id": owner_id, "print": vector_literal(vector)})
    row = await found.fetchone()
    if row is None:
        return None
    return Match(row["owner_id"], row["consent_id"], row["sample_id"], float(row["score"]))


async def judge(
    conn: Connection,
    mode: Mode,
    threshold: float,
    *,
    owner_id: uuid.UUID,
    vector: npt.ArrayLike,
    consent_id: uuid.UUID | None = None,
    sample_id: uuid.UUID | None = None,
    actor: str,
) -> Verdict:
    """Compare a new consent reading's or sample's print (`consent_id` or `sample_id`, of `owner_id`) with every
    other owner's, on `conn`'s service transaction, and record what that decides: under `hold` a match at or above
    `threshold` opens a hold; under `refuse` it is recorded as a hold refused by the policy; each with an audit
    event. `clear` under `off`, without a match, or once an operator released this very consent or sample."""
    if mode == "off":
        return "clear"
    ids = {"consent_id": consent_id, "sample_id": sample_id}
    if (await fetch_one(conn, _Q["released"], ids))["released"]:
        return "clear"
    match = await best_other(conn, owner_id, vector)
    if match is None or match.score < threshold:
        return "clear"
    state: Verdict = "held" if mode == "hold" else "refused"
    hold = await fetch_one(
        conn,
        _Q["open_hold"],
        {
            **ids,
            "owner_id": owner_id,
            "matched_owner_id": match.owner_id,
            "matched_consent_id": match.consent_id,
            "matched_sample_id": match.sample_id,
            "score": match.score,
            "threshold": threshold,
            "state": state,
            "decided_by": f"policy:{mode}",
        },
    )
    subject = "voice_consent" if consent_id is not None else "voice_sample"
    await record_audit(
        conn,
        actor,
        f"ownership.{state}",
        subject,
        consent_id or sample_id,
        detail={"holdId": hold["id"], "score": match.score, "threshold": threshold},
    )
    return state


async def register_consent(conn: Connection, consent_id: uuid.UUID, vector: npt.ArrayLike) -> None:
    """Add a verified consent's print to the registry, under its owner."""
    await conn.execute(_Q["register_consent"], {"id": consent_id, "print": vector_literal(vector)})


async def register_sample(conn: Connection, sample_id: uuid.UUID, vector: npt.ArrayLike) -> None:
    """Add a ready sample's print to the registry, under its owner (replacing the print of an earlier check)."""
    await conn.execute(_Q["register_sample"], {"id": sample_id, "print": vector_literal(vector)})


async def forget_consent(conn: Connection, consent_id: uuid.UUID) -> None:
    """Take a consent's print out of the registry (its evidence is purged)."""
    await conn.execute(_Q["forget_consent"], {"id": consent_id})


async def holds(
    conn: Connection, *, state: HoldState | None, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Hold]:
    """Up to `limit` holds in `state` (any when None), oldest first, after `after` (created_at, id)."""
    after_at, after_id = after or (None, None)
    params = {"state": state, "id": None, "after_at": after_at, "after_id": after_id, "limit": limit}
    return [msgspec.convert(row, Hold) for row in await fetch_all(conn, _Q["holds"], params)]


async def decide(
    conn: Connection, hold_id: uuid.UUID, decision: Literal["released", "refused"], *, actor: str, note: str | None
) -> Hold:
    """An operator's decision on a held consent or sample, on `conn`'s service transaction, with its audit event:
    `released` makes a consent verified (a sample ready) and registers its print under its owner; `refused` makes
    a consent rejected (`ownership_refused`) and fails a sample. HoldNotFound, or HoldDecided when it was decided
    before."""
    locked = await fetch_optional(conn, _Q["lock_hold"], {"id": hold_id})
    if locked is None:
        raise HoldNotFound(str(hold_id))
    if locked["state"] != "held":
        raise HoldDecided(f"hold {hold_id} is {locked['state']} already")
    await conn.execute(_Q["decide_hold"], {"id": hold_id, "state": decision, "decided_by": actor, "note": note})
    consent_id, sample_id = locked["consent_id"], locked["sample_id"]
    if decision == "released":
        if consent_id is not None:
            row = await fetch_optional(conn, _Q["release_consent"], {"id": consent_id})
            if row is not None and (vector := _vector(row["voiceprint"])) is not None:
                await register_consent(conn, consent_id, vector)
        else:
            row = await fetch_optional(conn, _Q["release_sample"], {"id": sample_id})
            if row is not None and (vector := _vector(row["voiceprint"])) is not None:
                await register_sample(conn, sample_id, vector)
    elif consent_id is not None:
        await conn.execute(_Q["refuse_consent"], {"id": consent_id})
    else:
        await conn.execute(_Q["refuse_sample"], {"id": sample_id, "reason": SAMPLE_REFUSAL})
    subject = ("voice_consent", consent_id) if consent_id is not None else ("voice_sample", sample_id)
    await record_audit(
        conn,
        actor,
        f"ownership.{decision}",
        subject[0],
        subject[1],
        detail={"holdId": hold_id, "score": float(locked["score"]), "note": note},
    )
    return await hold(conn, hold_id)


async def hold(conn: Connection, hold_id: uuid.UUID) -> Hold:
    """One hold (HoldNotFound when there is none)."""
    params = {"state": None, "id": hold_id, "after_at": None, "after_id": None, "limit": 1}
    row = await fetch_optional(conn, _Q["holds"], params)
    if row is None:
        raise HoldNotFound(str(hold_id))
    return msgspec.convert(row, Hold)


def _vector(stored: bytes | None) -> npt.NDArray[np.float32] | None:
    """A stored voiceprint (768 bytes of little-endian float32) as its vector; None for none, and for a print of
    GE2E (1,024 bytes), the encoder before, which joins the registry once printed again
    (backend/samples/reprint.py)."""
    if stored is None or len(stored) != _PRINT_BYTES:
        return None
    return np.frombuffer(bytes(stored), dtype="<f4")
