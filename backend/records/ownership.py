"""The voice ownership registry: every verified consent's voiceprint and every ready sample's, with its owner
(`voicegate.voice_prints`, indexed by pgvector's HNSW for cosine search), and the holds of consents and samples
whose voice matched another account's (`voicegate.ownership_holds`). Both are the service's alone.

A new consent reading or sample is compared with every other owner's prints, never with its own owner's (`judge`);
at or above the threshold, as VOICEGATE_VOICE_OWNERSHIP says: its uploader is asked to read a consent phrase (`ask`,
the default), matched one to one against the sample (`answer`); or it is held for an operator's review (`hold`), or
refused (`refuse`). A print a live reading already backs (a consent's reading, a sample its spoken consent's reader
matched) needs no question: under `ask` it goes on, unless its match to the other account is near-identical, which
no reading can settle (the same person's second account, or a copy of the other's own voice): held for review. An
operator lists the holds and releases or refuses each (`voicegate ops voice-holds`, `decide`). docs/ownership.md says
what is compared, why, what a held or asked user sees and how an operator decides.
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

#: VOICEGATE_VOICE_OWNERSHIP: ask a match's uploader to read, hold it for review, refuse it at once, or compare
#: nothing.
Mode = Literal["ask", "hold", "refuse", "off"]
#: What a comparison decided: nothing matched (or an operator, or a reading, released this voice), held, refused, or
#: its uploader is asked to read.
Verdict = Literal["clear", "held", "refused", "asked"]
#: `asked`: waiting for the uploader's reading; `answered`: the reading matched the sample.
HoldState = Literal["held", "released", "refused", "asked", "answered"]
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


class Question(msgspec.Struct, frozen=True, kw_only=True):
    """An asked hold a consent's reading answers: the sample it is about, that sample's print, and how well the
    sample matched the other account."""

    id: uuid.UUID
    sample_id: uuid.UUID
    sample_print: bytes | None
    score: float


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


class Thresholds(msgspec.Struct, frozen=True):
    """From which cosine a print matches another account's (`match`), and from which the two are near-identical
    (`same_voice`): what a reading cannot settle."""

    match: float
    same_voice: float


async def judge(
    conn: Connection,
    mode: Mode,
    thresholds: Thresholds,
    *,
    owner_id: uuid.UUID,
    vector: npt.ArrayLike,
    read: bool,
    consent_id: uuid.UUID | None = None,
    sample_id: uuid.UUID | None = None,
    actor: str,
) -> Verdict:
    """Compare a new consent reading's or sample's print (`consent_id` or `sample_id`, of `owner_id`) with every
    other owner's, on `conn`'s service transaction, and record what that decides, with an audit event, for a match at
    or above `thresholds.match`: under `ask` a print no live reading backs (`read` false: a sample under a ticked
    box) opens an asked hold (its uploader is asked to read), one a reading backs goes on unless the match is
    near-identical (`thresholds.same_voice`), which opens a hold for review; under `hold` every match opens a hold,
    under `refuse` it is recorded as a hold refused by the policy. `clear` under `off`, without a match, or once an
    operator or a reading released this very consent or sample; `asked` again while its question waits."""
    if mode == "off":
        return "clear"
    ids = {"consent_id": consent_id, "sample_id": sample_id}
    earlier = (await fetch_one(conn, _Q["earlier"], ids))["state"]
    if earlier in {"released", "answered"}:
        return "clear"
    if earlier == "asked":
        return "asked"
    match = await best_other(conn, owner_id, vector)
    if match is None or match.score < thresholds.match:
        return "clear"
    state = _verdict(mode, thresholds, match.score, read=read)
    if state == "clear":
        subject = "voice_consent" if consent_id is not None else "voice_sample"
        detail = {"score": match.score, "threshold": thresholds.match, "sameVoice": thresholds.same_voice}
        await record_audit(conn, actor, "ownership.read", subject, consent_id or sample_id, detail=detail)
        return state
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
            "threshold": thresholds.match,
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
        detail={"holdId": hold["id"], "score": match.score, "threshold": thresholds.match},
    )
    return state


def _verdict(mode: Mode, thresholds: Thresholds, score: float, *, read: bool) -> Verdict:
    """What a match of `score` becomes under `mode`: a reading backs the print when `read`; one none backs is asked
    for first, whatever the score (`answer` holds it if the reading then shows the very voice)."""
    if mode == "refuse":
        return "refused"
    if mode == "hold" or (read and score >= thresholds.same_voice):
        return "held"
    return "clear" if read else "asked"


async def ask_to_read(conn: Connection, sample_id: uuid.UUID, consent_id: uuid.UUID) -> None:
    """Name `consent_id` the reading that answers the sample's asked hold (the newest phrase given for it), on
    `conn`'s service transaction."""
    await conn.execute(_Q["ask_to_read"], {"sample_id": sample_id, "consent_id": consent_id})


async def question_for(conn: Connection, consent_id: uuid.UUID) -> Question | None:
    """The asked hold `consent_id`'s reading answers, locked for the answer (None when it answers none)."""
    row = await fetch_optional(conn, _Q["question_for"], {"consent_id": consent_id})
    return None if row is None else msgspec.convert(row, Question)


async def answer(
    conn: Connection, question: Question, reading: npt.ArrayLike, threshold: float, same_voice: float, *, actor: str
) -> Verdict:
    """Settle `question` with its reading's print, on `conn`'s service transaction, with its audit event: the
    reading matches the sample (from `threshold`, one to one) and the sample is not near-identical to the other
    account's voice (below `same_voice`): `clear`, the sample ready and registered under its owner; matching, but
    near-identical: `held` for review, which no reading settles; not matching: `refused`, the sample failed. A sample
    without a print of this encoder is `held`."""
    sample = None if question.sample_print is None else _vector(question.sample_print)
    verdict: Verdict
    if sample is None:
        # The sample's print is still GE2E's (asked before the encoder changed, not printed again yet) or gone with
        # its cleaned copy: the reading has nothing to be matched to, and refusing would fail an innocent uploader
        # for the upgrade's sake, so a person decides.
        verdict = "held"
    else:
        matched = float(np.dot(sample, np.asarray(reading, dtype=np.float32))) >= threshold
        verdict = "refused" if not matched else ("held" if question.score >= same_voice else "clear")
    state = {"clear": "answered", "held": "held", "refused": "refused"}[verdict]
    await conn.execute(_Q["answer"], {"id": question.id, "state": state})
    if verdict == "clear" and sample is not None:
        await conn.execute(_Q["release_sample_read"], {"id": question.sample_id})
        await register_sample(conn, question.sample_id, sample)
    elif verdict == "held":
        await conn.execute(_Q["hold_asked_sample"], {"id": question.sample_id})
    else:
        await conn.execute(_Q["refuse_asked_sample"], {"id": question.sample_id, "reason": SAMPLE_REFUSAL})
    await record_audit(
        conn, actor, f"ownership.{state}", "voice_sample", question.sample_id, detail={"holdId": question.id}
    )
    return verdict


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
    if locked["state"] not in {"held", "asked"}:
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
