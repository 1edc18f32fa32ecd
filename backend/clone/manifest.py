"""The voice manifest (issue 17): `voice-metadata/{owner}/{voice_id}.json`, what a voice is in one JSON file
in a private bucket: voicegate's voice id, the provider, its voice id and target model, when the voice was
made and last changed, the consent it was cloned under and the quality verdict of its sample.

Written by the clone step once a voice is ready and its row carries the attempt's provider voice (so also
when a new attempt moves it to another provider), and removed when the voice is deleted. Both happen
under the voice row's lock, in the transaction that reads (or deletes) the row, so two writers cannot
leave an older manifest over a newer one and a deleted voice keeps no manifest: a failed Storage call
rolls the deletion back. That lock orders the writers, so the file's digest (backend.storage.integrity)
is recorded after the upload, with the COMMIT: the voice row is read and locked in the round trip that
opens the transaction, and the digest goes with the one that ends it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec

from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.pool import Pool
from backend.db.queries import load_queries
from backend.db.units import service_transaction
from backend.storage import integrity
from backend.storage.client import ObjectStorage

_Q = load_queries(Path(__file__).with_suffix(".sql"))
BUCKET: Final = "voice-metadata"


class VoiceManifest(msgspec.Struct, rename="camel", kw_only=True):
    """The manifest's JSON: identifiers, times and states, never names or text."""

    voice_id: uuid.UUID
    provider: str
    provider_voice_id: str
    target_model: str | None
    created_at: datetime
    updated_at: datetime
    consent_id: uuid.UUID | None
    consent_version: str | None
    sample_id: uuid.UUID | None
    #: The sample's quality verdict (`good`, `usable` or `poor`), when the voice was cloned from a sample.
    sample_verdict: str | None


def manifest_path(owner_id: uuid.UUID, voice_id: uuid.UUID) -> str:
    """Where a voice's manifest lives: in its owner's folder, as the storage policies require."""
    return f"{owner_id}/{voice_id}.json"


async def write_manifest(
    pool: Pool,
    storage: ObjectStorage,
    *,
    voice_id: uuid.UUID,
    provider: str,
    provider_voice_id: str,
    sample_id: uuid.UUID | None,
) -> bool:
    """Write (or overwrite) the manifest of a live voice whose row carries `provider`'s `provider_voice_id`,
    with the verdict of `sample_id` (the sample that voice was cloned from). False when the voice is
    deleted or has moved on to another provider voice meanwhile: its current manifest is another's to write.
    """
    async with service_transaction(pool, budget=integrity.WRITE_BUDGET_SECONDS) as conn:
        row = await fetch_optional(conn, _Q["lock_voice"], {"voice_id": voice_id, "sample_id": sample_id})
        if (
            row is None
            or row["deleted_at"] is not None
            or (row["provider"], row["provider_voice_id"]) != (provider, provider_voice_id)
        ):
            return False
        manifest = VoiceManifest(**{name: row[name] for name in VoiceManifest.__struct_fields__})
        path = manifest_path(row["owner_id"], voice_id)
        data = msgspec.json.encode(manifest)
        await integrity.write_ordered(conn, storage, BUCKET, path, data, content_type="application/json")
    return True


async def remove_manifest(conn: Connection, storage: ObjectStorage, owner_id: uuid.UUID, voice_id: uuid.UUID) -> None:
    """Remove the voice's manifest and its record, on `conn`'s transaction that deletes the voice, before it
    commits (its row lock orders this after any `write_manifest` under way). A manifest never written is no
    error."""
    await integrity.remove(conn, storage, BUCKET, [manifest_path(owner_id, voice_id)])
