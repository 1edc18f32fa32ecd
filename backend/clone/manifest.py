"""The voice manifest: `voice-metadata/{owner}/{voice_id}.json`, what a voice is in one JSON file in a private
bucket: voicegate's voice id, the provider, its voice id and target model, when the voice was made and last
changed, the consent it was cloned under, the quality verdict of its sample and its likeness to the sample
(with the threshold beside it).

Written by the clone step once a voice is ready and its row carries the attempt's provider voice (so also
when a new attempt moves it to another provider), and removed when the voice is deleted. No database lock
and no transaction is held while Storage is called, so no transition that updates the voice waits on an
upload. A write is:

1. the voice read, unlocked (`read_voice`), and the manifest made from it (the clone step reads it in the
   transaction of the completion that calls for the write, committed before anything below);
2. the write announced (backend.storage.integrity.announce), so a reader takes the new bytes as
   voicegate's while they are not yet recorded, and the sweep finds the write if its writer dies;
3. the upload;
4. `confirm`: in one statement, the digest recorded and the announcement ended if the voice is still
   live and unchanged (the same `updated_at`, the row locked for that statement only).

A writer whose voice changed meanwhile reads it again and starts over (for no manifest, it `forget`s), so
the last Storage call to land is always followed by a confirmation that finds the voice as that call left
the object: the file and its digest end as the voice's current state, and a deleted voice keeps none. What
a crash or a Storage failure leaves half done is settled by the maintenance sweep (`settle_manifests`).
docs/concepts.md#voice-manifest has the whole argument.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, Final

import msgspec

from backend.clone.types import VoiceManifest
from backend.db.execute import fetch_all, fetch_one
from backend.db.queries import load_queries
from backend.db.units import Database
from backend.storage import integrity, paths
from backend.storage.client import ObjectStorage
from backend.storage.digest import Digest

log = logging.getLogger(__name__)
_Q = load_queries(Path(__file__).with_suffix(".sql"))
#: The voices as their manifests are made from them, for `Database.grouped` (the clone step reads them with its
#: completions).
READ_VOICES: Final = _Q["read_voices"]
BUCKET: Final = paths.METADATA
#: Seconds after which an announced write's upload is surely over: the Storage client gives one up after
#: 30 s. An announcement this old was left by a writer that died or gave up, and is settled by the sweep.
WRITE_LIFETIME_SECONDS: Final = 600.0
#: Rounds a writer makes when the voice keeps changing under its uploads; it then leaves the manifest to
#: the sweep, which finds its announced write once the write is past its lifetime.
_ROUNDS: Final = 4


async def write_manifest(
    db: Database,
    storage: ObjectStorage,
    *,
    voice_id: uuid.UUID,
    provider: str,
    provider_voice_id: str,
    read: dict[str, Any] | None = None,
) -> bool:
    """Write (or overwrite) the manifest of a live voice whose row carries `provider`'s `provider_voice_id`.
    False when the voice is deleted or has moved on to another provider voice before this began (its current
    manifest is another's to write), or when it no longer has a manifest by the time this ends (what this
    wrote is removed). `read`: the voice as `read_voice` read it in a committed transaction since the change
    that calls for this write (else it is read here)."""
    voice = read if read is not None else await read_voice(db, voice_id)
    if voice is None or voice["deleted_at"] is not None:
        return False
    if (voice["provider"], voice["provider_voice_id"]) != (provider, provider_voice_id):
        return False
    return await _settle(db, storage, paths.manifest(voice["owner_id"], voice_id), voice)


async def remove_manifest(db: Database, storage: ObjectStorage, owner_id: uuid.UUID, voice_id: uuid.UUID) -> None:
    """Remove the manifest of a voice whose deletion has committed, then its record. A manifest never written
    is no error; one Storage cannot remove now is removed by the sweep (its record names a deleted voice)."""
    await _settle(db, storage, paths.manifest(owner_id, voice_id), await read_voice(db, voice_id))


class RecordCursor:
    """Where a sweep's reading of the manifests' records stopped: each `settle_manifests` with it reads the next
    page of records, by name, and once it has read them all starts over, so a sweep reads a bounded number of
    rows however many voices there are."""

    __slots__ = ("after",)

    def __init__(self) -> None:
        self.after = ""


async def settle_manifests(
    db: Database,
    storage: ObjectStorage,
    *,
    lifetime: float = WRITE_LIFETIME_SECONDS,
    limit: int,
    cursor: RecordCursor | None = None,
) -> int:
    """Finish up to `limit` manifests left half done: those with a write announced more than `lifetime`
    seconds ago (its writer died or gave up) are made what their voice now is to have, and those of deleted
    voices are removed. The announced writes are all looked at (only those under way are kept); of the records,
    the `limit` after `cursor` (a new cursor: the first `limit`), which it moves on. How many were settled."""
    cursor = cursor or RecordCursor()
    params = {"bucket": BUCKET, "lifetime": lifetime, "limit": limit, "after": cursor.after}
    async with db.service_statement() as conn:
        rows = await fetch_all(conn, _Q["unsettled"], params)
    page_end, page_rows = rows[0]["page_end"], rows[0]["page_rows"]
    cursor.after = page_end if page_rows >= limit else ""
    unsettled = [row for row in rows if row["voice_id"] is not None]
    for row in unsettled:
        path = paths.manifest(row["owner_id"], row["voice_id"])
        await _settle(db, storage, path, await read_voice(db, row["voice_id"]), lifetime=lifetime)
    return len(unsettled)


async def read_voice(db: Database, voice_id: uuid.UUID) -> dict[str, Any] | None:
    """The voice as its manifest is made from it (None if it is gone), read with the voices other writers read at
    the same moment."""
    [rows] = await db.grouped((READ_VOICES,), {"voice_id": voice_id})
    return rows[0] if rows else None


def _manifest_of(voice: dict[str, Any] | None) -> bytes | None:
    """The manifest `voice` (as `read_voice` read it, None if gone) is to have, if any."""
    if voice is None or voice["deleted_at"] is not None or voice["provider_voice_id"] is None:
        return None
    return msgspec.json.encode(VoiceManifest(**{name: voice[name] for name in VoiceManifest.__struct_fields__}))


async def _settle(
    db: Database,
    storage: ObjectStorage,
    path: str,
    voice: dict[str, Any] | None,
    *,
    lifetime: float = WRITE_LIFETIME_SECONDS,
) -> bool:
    """Make the object at `path` what `voice` is to have (written, or removed), and confirm it; the voice as it
    then is, again, while it changed meanwhile (see the module docstring). Whether a manifest was written."""
    # Every write this call announced: each is ended only once the object is recorded or removed, as its
    # bytes may be the object's until then.
    writes: list[int] = []
    voice_id = None if voice is None else voice["voice_id"]
    for _ in range(_ROUNDS):
        data = _manifest_of(voice)
        params = {
            "voice_id": voice_id,
            "updated_at": None if voice is None else voice["updated_at"],
            "bucket": BUCKET,
            "name": path,
            "writes": writes,
            "lifetime": lifetime,
        }
        if data is None:
            await storage.remove(BUCKET, [path])
            async with db.service_statement() as conn:
                forgotten = await fetch_one(conn, _Q["forget"], params)
            if forgotten["confirmed"]:
                return False
        else:
            digest = Digest.of(data)
            writes.append(await integrity.announce(db, BUCKET, path, digest))
            await storage.upload(BUCKET, path, data, "application/json", upsert=True)
            # With the confirmations other writers make at the same moment, in one statement.
            [rows] = await db.grouped((_Q["confirm"],), params | {"sha256": digest.sha256, "size": digest.size})
            if rows[0]["confirmed"]:
                return True
        # The voice changed while Storage was called: this call may have landed over what the writer that
        # changed it wrote, so what the voice now is to have is this writer's to make too.
        voice = None if voice_id is None else await read_voice(db, voice_id)
    log.warning("the manifest at %s is left to the sweep: its voice kept changing", path)
    return False
