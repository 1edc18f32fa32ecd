"""Voiceprints of GE2E, the speaker encoder before ECAPA-TDNN, printed again with ECAPA-TDNN from the recording they
were taken of (docs/ownership.md, "When the speaker encoder changes"). Prints of the two encoders do not compare:
the migration that changed encoders (20261128081500_ecapa_voiceprints) emptied the ownership registry and dropped
the samples' partial prints, and left each consent's and sample's GE2E print (1,024 bytes, where ECAPA-TDNN's are
768) to be replaced here:

* a consent: from its kept reading (`statement_sample_path`; a consent whose evidence was purged has no print
  left); a verified one joins the registry again;
* a sample: from its cleaned copy (what its check printed), with its partial prints; a ready one joins the
  registry again. A sample whose cleaned copy is gone, or holds too little speech now, loses its print (null,
  as one never checked: "dropped").

A consent whose reading is gone ("gone"), cannot be read ("error") or holds too little speech ("no speech") keeps
GE2E's print, which compares with nothing (`backend.voiceprint.stored_print`), for an operator to look at.

`voicegate ops reprint-voiceprints --apply` runs it over every stale print (scripts/reprint_voiceprints.py); the
sample check re-prints its own consent first when that one's print is still GE2E's (`reprint_consent`), so that
no sample is judged against a print of the other encoder. Each print is made on the CPU executor and written in
a transaction of its own, only where the print is still GE2E's: two re-prints of one row at once write the same.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from backend.audio.decode import decode_audio
from backend.cpu import CpuExecutor, long_calls
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.records import ownership
from backend.storage import integrity, paths
from backend.storage.client import ObjectStorage
from backend.voiceprint import SpeechPrints, Voiceprint, speech_prints, voiceprint

_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: Rows read at once while looking for stale prints.
BATCH: Final = 100

Outcome = Literal["reprinted", "dropped", "no speech", "gone", "error"]


@dataclass(frozen=True)
class Reprinted:
    """What became of one stale print."""

    kind: Literal["consent", "sample"]
    id: uuid.UUID
    owner_id: uuid.UUID
    outcome: Outcome
    error: str | None = None


def _print(data: bytes) -> Voiceprint | None:
    decoded = decode_audio(data)
    return voiceprint(decoded.samples, decoded.sample_rate)


def _prints(data: bytes) -> SpeechPrints | None:
    decoded = decode_audio(data)
    return speech_prints(decoded.samples, decoded.sample_rate)


async def reprint_consent(
    db: Database, storage: ObjectStorage, cpu: CpuExecutor, consent_id: uuid.UUID, *, actor: str
) -> Reprinted | None:
    """Print consent ``consent_id`` again from its reading when its print is GE2E's; None when it is not."""
    async with db.service_transaction() as conn:
        row = await fetch_optional(conn, _Q["stale_consent"], {"id": consent_id})
    return None if row is None else await _consent(db, storage, cpu, row, actor=actor)


async def reprint_all(
    db: Database, storage: ObjectStorage | None, cpu: CpuExecutor, *, actor: str
) -> AsyncIterator[Reprinted]:
    """Every stale consent, then every stale sample, printed again (with ``storage``) or only listed (None: a dry
    run, each with the outcome "gone" or "reprinted" it would have), one at a time."""
    kinds: tuple[tuple[Literal["consent", "sample"], str], ...] = (
        ("consent", "stale_consents"),
        ("sample", "stale_samples"),
    )
    for kind, query in kinds:
        after = uuid.UUID(int=0)
        while True:
            async with db.service_transaction() as conn:
                rows = await fetch_all(conn, _Q[query], {"after": after, "limit": BATCH})
            for row in rows:
                after = row["id"]
                if storage is None:
                    path = row["statement_sample_path" if kind == "consent" else "processed_object_path"]
                    yield Reprinted(kind, row["id"], row["owner_id"], _planned(kind, path))
                elif kind == "consent":
                    yield await _consent(db, storage, cpu, row, actor=actor)
                else:
                    yield await _sample(db, storage, cpu, row, actor=actor)
            if len(rows) < BATCH:
                break


def _planned(kind: Literal["consent", "sample"], path: str | None) -> Outcome:
    """What a run with Storage would do with a stale print, by whether its recording is kept."""
    if path is not None:
        return "reprinted"
    return "gone" if kind == "consent" else "dropped"


async def _consent(
    db: Database, storage: ObjectStorage, cpu: CpuExecutor, row: dict[str, Any], *, actor: str
) -> Reprinted:
    consent_id, owner_id, path = row["id"], row["owner_id"], row["statement_sample_path"]
    if path is None:  # a verified consent keeps its reading with its print; this one kept neither (never so)
        return Reprinted("consent", consent_id, owner_id, "gone")
    try:
        data = await integrity.read(
            db, storage, paths.SAMPLES, path, actor=actor, subject=("voice_consent", consent_id)
        )
        with long_calls(queued=True):  # a voiceprint of a reading of up to 60 s
            made = await cpu.run(owner_id, _print, data)
    except Exception as exc:  # reported per consent; the rest go on
        return Reprinted("consent", consent_id, owner_id, "error", f"{type(exc).__name__}: {exc}")
    if made is None:
        return Reprinted("consent", consent_id, owner_id, "no speech")
    async with db.service_transaction() as conn:
        written = await fetch_optional(conn, _Q["reprint_consent"], {"id": consent_id, "voiceprint": made.to_bytes()})
        if written is not None and written["status"] == "verified":
            await ownership.register_consent(conn, consent_id, made.vector)
    return Reprinted("consent", consent_id, owner_id, "reprinted")


async def _sample(
    db: Database, storage: ObjectStorage, cpu: CpuExecutor, row: dict[str, Any], *, actor: str
) -> Reprinted:
    sample_id, owner_id, path = row["id"], row["owner_id"], row["processed_object_path"]
    prints: SpeechPrints | None = None
    if path is not None:
        try:
            data = await integrity.read(
                db, storage, row["bucket_id"], path, actor=actor, subject=("voice_sample", sample_id)
            )
            with long_calls(queued=True):  # the prints of a sample's speech, seconds of CPU for a long one
                prints = await cpu.run(owner_id, _prints, data)
        except Exception as exc:  # reported per sample; the rest go on
            return Reprinted("sample", sample_id, owner_id, "error", f"{type(exc).__name__}: {exc}")
    made = None if prints is None else prints.voiceprint()
    async with db.service_transaction() as conn:
        params = {
            "id": sample_id,
            "voiceprint": None if made is None else made.to_bytes(),
            "speech_prints": None if prints is None else prints.to_bytes(),
        }
        written = await fetch_optional(conn, _Q["reprint_sample"], params)
        if written is not None and made is not None and written["status"] == "ready":
            await ownership.register_sample(conn, sample_id, made.vector)
    return Reprinted("sample", sample_id, owner_id, "reprinted" if made is not None else "dropped")
