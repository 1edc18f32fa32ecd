"""The samples' use cases as their owner calls them (`/api/v1/voice-samples`): upload one, list, read, rename,
listen to, and delete one or withdraw the consent that kept it; one object the composition root builds over the
database, Storage and the settings. The write path every sample takes is `upload`, its removal `purge`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from backend import queues
from backend.auth.verify import UserClaims
from backend.db.execute import fetch_all, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database, Recorder, become_service
from backend.errors import Conflict, NotFound
from backend.fields import Rename
from backend.records.sample_rows import VoiceSampleStatus
from backend.samples.purge import purge_sample
from backend.samples.types import SampleAccepted, SampleAudio, SampleList, SampleStatus
from backend.samples.upload import (
    AUDIO_URL_SECONDS,
    LIST_LIMIT,
    SampleUpload,
    check_upload,
    consent_for_sample,
    insert_sample,
    status_of,
    stored_upload,
    visible,
)
from backend.settings import Settings
from backend.storage import integrity, paths
from backend.storage.client import ObjectStorage

_Q = load_queries(Path(__file__).with_suffix(".sql"))


@dataclass(frozen=True)
class SamplesService:
    """A user's samples: their use cases over the database, Storage and the settings read at start-up (the
    consent policy, the providers' sample rules, the samples' retention)."""

    db: Database
    storage: ObjectStorage
    settings: Settings

    async def upload_sample(
        self,
        claims: UserClaims,
        received: SampleUpload,
        *,
        record: Recorder | None = None,
        resource_id: uuid.UUID | None = None,
        abandoned_id: uuid.UUID | None = None,
    ) -> SampleAccepted:
        """Store a consented sample and queue it for checking, in that order and all or nothing.

        The consent, the sample row and the `voice_sample_process` message commit together (with the
        Idempotency-Key's record, if any); if they cannot, the uploaded object is removed again. The sample
        is `resource_id` (a new id by default); `abandoned_id` is the id an earlier, abandoned try of the same
        request may have stored it under (see `stored_upload`).
        """
        owner_id, sample_id = uuid.UUID(claims.sub), resource_id or uuid.uuid4()
        path = paths.sample_upload(owner_id, sample_id)
        abandoned = paths.sample_upload(owner_id, abandoned_id) if abandoned_id is not None else None
        given = received.consent(self.settings.consent)
        new = check_upload(
            received,
            given,
            self.settings.provider_settings,
            sample_id=sample_id,
            owner_id=owner_id,
            voice_id=None,
            path=path,
        )
        async with (
            stored_upload(self.storage, path, received.upload, new.sniffed_type, abandoned=abandoned),
            self.db.user_transaction(claims.raw) as conn,
        ):
            consent_id = await consent_for_sample(conn, given)
            await become_service(conn)
            row = await insert_sample(
                conn,
                new,
                consent_id,
                status=VoiceSampleStatus.PENDING,
                retention_days=self.settings.sample_retention_days,
            )
            await queues.send(conn, queues.SAMPLE, queues.sample_check_message(sample_id))
            accepted = SampleAccepted(sample_id, row.status, new.provider, row.expires_at)
            if record is not None:
                await record(conn, accepted)
        return accepted

    async def list_samples(self, claims: UserClaims) -> SampleList:
        """The caller's samples (RLS decides whose), newest first, at most `LIST_LIMIT`."""
        async with self.db.user_statement(claims.raw) as conn:
            rows = await fetch_all(conn, _Q["list_samples"], {"limit": LIST_LIMIT})
        return SampleList([status_of(row) for row in rows])

    async def sample_status(self, claims: UserClaims, sample_id: uuid.UUID) -> SampleStatus:
        """The caller's sample (RLS decides whose), 404 for anyone else's."""
        async with self.db.user_statement(claims.raw) as conn:
            row = await fetch_optional(conn, _Q["sample_status"], {"id": sample_id})
        if row is None:
            raise NotFound("Sample not found.")
        return status_of(row)

    async def rename_sample(self, claims: UserClaims, sample_id: uuid.UUID, rename: Rename) -> SampleStatus:
        """Give the caller's sample a name (without surrounding spaces); 404 for anyone else's."""
        async with self.db.user_transaction(claims.raw) as conn:
            if not await visible(conn, sample_id):
                raise NotFound("Sample not found.")
            await become_service(conn)
            renamed = await fetch_optional(
                conn,
                _Q["rename_sample"],
                {"id": sample_id, "owner_id": uuid.UUID(claims.sub), "name": rename.name.strip()},
            )
        if renamed is None:
            raise NotFound("Sample not found.")  # deleted since the caller's check
        return await self.sample_status(claims, sample_id)

    async def sample_audio(self, claims: UserClaims, sample_id: uuid.UUID) -> SampleAudio:
        """A signed URL to listen to the caller's sample (404 for anyone else's); a file voicegate stored that
        changed since is refused (409 `stored_object_altered`), as every served file is."""
        async with self.db.user_transaction(claims.raw) as conn:
            row = await fetch_optional(conn, _Q["sample_audio"], {"id": sample_id})
        if row is None:
            raise NotFound("Sample not found.")
        copy, path = "original", row["object_path"]
        if row["original_removed_at"] is not None and row["processed_object_path"] is not None:
            copy, path = "processed", row["processed_object_path"]
        url = await integrity.signed_url(
            self.db,
            self.storage,
            row["bucket_id"],
            path,
            AUDIO_URL_SECONDS,
            actor=f"user:{claims.sub}",
            subject=("voice_sample", sample_id),
        )
        return SampleAudio(audio_url=url, expires_in=AUDIO_URL_SECONDS, copy=copy)

    async def withdraw_keep(self, claims: UserClaims, sample_id: uuid.UUID) -> None:
        """Withdraw the consent to keep the caller's sample: recorded on the consent, and the sample is
        purged (row, original and cleaned copy, audit event) in the same transaction. 409 when it was not kept."""
        async with self.db.user_transaction(claims.raw) as conn:
            if not await visible(conn, sample_id):
                raise NotFound("Sample not found.")
        async with self.db.service_transaction() as conn:
            withdrawn = await fetch_optional(conn, _Q["withdraw_keep"], {"sample_id": sample_id})
            if withdrawn is None:
                raise Conflict("This sample is not kept for re-enrolment; delete it instead.")
            purged = await purge_sample(
                conn,
                self.storage,
                sample_id,
                actor=f"user:{claims.sub}",
                reason="consent_withdrawn",
                detail={"consent_id": str(withdrawn["consent_id"])},
                wait=True,
            )
            if purged is None:
                raise NotFound("Sample not found.")  # a concurrent delete won

    async def delete_sample(self, claims: UserClaims, sample_id: uuid.UUID) -> None:
        """Purge the caller's sample now: the row, its original and processed objects, and an audit event.

        A clone attempt still enrolling from it fails with `sample_missing`; a voice already cloned from
        it stays (it lives at the provider, not in the sample).
        """
        async with self.db.user_transaction(claims.raw) as conn:
            if not await visible(conn, sample_id):
                raise NotFound("Sample not found.")
        async with self.db.service_transaction() as conn:
            purged = await purge_sample(
                conn, self.storage, sample_id, actor=f"user:{claims.sub}", reason="deleted", wait=True
            )
        if purged is None:
            raise NotFound("Sample not found.")  # a concurrent delete or the retention purge won
