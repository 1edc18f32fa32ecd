"""A spoken consent's evidence (its recording and its speaker's voiceprint) purged once its retention ends:
`VOICEGATE_SAMPLE_RETENTION_DAYS` after it was verified, extended by every sample stored under it to that
sample's own retention (a trigger of the migration), so no sample is judged after its consent's voiceprint went.
The consent row stays, marked `evidencePurgedAt`, and covers no new sample. The worker's maintenance sweep
runs it.

Each consent is purged in its own transaction: its row is locked and updated first, its recording is removed
from Storage, then the audit event is written and the transaction commits. A failed removal rolls it back; a
failed commit leaves a row whose object is already gone, purged again by the next sweep (removing a missing
object is no error)."""

from __future__ import annotations

import uuid
from pathlib import Path

from backend.consents.service import RECORDING_BUCKET
from backend.db.audit import record_audit
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import TransactionSource, transaction_from
from backend.records import ownership
from backend.storage import integrity
from backend.storage.client import ObjectRemover

_Q = load_queries(Path(__file__).with_suffix(".sql"))


async def purge_expired_evidence(source: TransactionSource, storage: ObjectRemover, *, limit: int, actor: str) -> int:
    """Purge the evidence of up to `limit` consents whose retention ended; how many were purged. A consent held by
    another purge is passed by; an error of Storage or the database stops the run (the next sweep goes on)."""
    async with transaction_from(source) as conn:
        due: list[uuid.UUID] = [row["id"] for row in await fetch_all(conn, _Q["expired_evidence"], {"limit": limit})]
    purged = 0
    for consent_id in due:
        async with transaction_from(source) as conn:
            row = await fetch_optional(conn, _Q["purge_evidence"], {"id": consent_id})
            if row is None:
                continue
            # Its print leaves the ownership registry with the voiceprint it was taken from.
            await ownership.forget_consent(conn, consent_id)
            path = row["recorded_path"]
            removed = await integrity.remove(conn, storage, RECORDING_BUCKET, [path]) if path else []
            detail = {
                "owner_id": str(row["owner_id"]),
                "objects": [path] if path else [],
                "removed": removed,
                "evidence_expires_at": row["evidence_expires_at"].isoformat(),
            }
            await record_audit(conn, actor, "consent.evidence_purged", "voice_consent", consent_id, detail=detail)
        purged += 1
    return purged
