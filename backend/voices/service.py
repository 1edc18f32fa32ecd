"""A user's voices (`VoicesService`, the routes' use cases): list, get, rename, soft delete (provider-side deletion
is an operator action), one made from a set of samples or enrolled again from another (`sample_sets` holds the
set's rules), and the upload-then-finalize clone flow (`/api/clone/...`: a signed upload URL for a consented
draft voice, then a checked sample and a queued attempt, all or nothing); what the routes take and answer is
`types`. Starting a clone makes
them (`backend.clone.start`); the whole voice row other areas read is `backend.records.voice_rows`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from backend import samples
from backend.auth.verify import UserClaims
from backend.clone import (
    FinalizedUpload,
    LikenessSource,
    NoLikeness,
    draft_voice,
    lock_draft,
    remove_manifest,
    start_clone,
)
from backend.db.bucket_config import declared_bucket
from backend.db.connection import Connection
from backend.db.execute import fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database, Recorder
from backend.domain.attempts import SetMember
from backend.domain.voices import VoiceRow, VoiceStatus
from backend.errors import (
    Conflict,
    DraftVoicesLimited,
    NotFound,
    ServiceUnavailable,
)
from backend.fields import Rename
from backend.policy.consent import GivenConsent, Origin, require_consent
from backend.policy.sample_set import report_of
from backend.provenance import PROVENANCE
from backend.providers.registry import check_enrolment_language
from backend.records import attempts, owners, reflection_rows, voice_rows
from backend.records.rows import fetch_optional_record, fetch_records
from backend.records.voice_rows import VoiceName, name_of_its_own
from backend.settings import Settings
from backend.storage import paths
from backend.storage.client import ObjectStorage
from backend.voices.sample_sets import accepted_set, enrolment_of, ready_samples, speakers_judged
from backend.voices.types import (
    FinalizeBody,
    FinalizedClone,
    NewVoiceBody,
    SamplesBody,
    UploadTicket,
    UploadUrlBody,
    Voice,
    VoiceList,
    VoiceSamples,
)

_Q = load_queries(Path(__file__).with_suffix(".sql"))
log = logging.getLogger(__name__)
LIST_LIMIT = 200


class _VoiceRow(VoiceRow, frozen=True, kw_only=True):
    """A voice row with the likeness of the attempt behind its provider voice (the `voices` query)."""

    likeness: float | None = None
    likeness_threshold: float | None = None
    likeness_source: LikenessSource | None = None
    likeness_error: NoLikeness | None = None
    likeness_baseline: float | None = None


class _SetRow(SetMember, frozen=True, kw_only=True):
    attempt_id: uuid.UUID
    attempt_status: str


def _voice(row: _VoiceRow) -> Voice:
    voice = msgspec.convert(row, Voice, from_attributes=True)
    return msgspec.structs.replace(voice, provenance=PROVENANCE if row.status is VoiceStatus.READY else None)


async def _visible_voice(conn: Connection, voice_id: uuid.UUID) -> Voice:
    row = await fetch_optional_record(conn, _Q["voices"], {"id": voice_id, "limit": 1}, _VoiceRow)
    if row is None:
        raise NotFound("Voice not found.")
    return _voice(row)


#: Longest `Prefer: wait=N` honoured: a client may ask for more, it gets this.
MAX_WAIT_SECONDS = 60
_FINISHED = frozenset({VoiceStatus.READY, VoiceStatus.FAILED})


def preferred_wait(prefer: str | None) -> int | None:
    """Seconds from an RFC 7240 `Prefer: wait=N` header (capped), None without a valid one."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait" and value.strip().isdigit():
            return min(int(value.strip()), MAX_WAIT_SECONDS)
    return None


@dataclass(frozen=True)
class VoicesService:
    """A user's voices: their use cases over the database, Storage (where a sample and the voice's manifest are
    kept) and the settings read at start-up (the providers, the consent policy, Storage's public address, the
    samples' retention)."""

    db: Database
    storage: ObjectStorage
    settings: Settings

    async def list_voices(self, claims: UserClaims) -> VoiceList:
        """The caller's voices that are not deleted."""
        async with self.db.user_statement(claims.raw) as conn:
            rows = await fetch_records(conn, _Q["voices"], {"id": None, "limit": LIST_LIMIT}, _VoiceRow)
        return VoiceList([_voice(row) for row in rows])

    async def get_voice(self, claims: UserClaims, voice_id: uuid.UUID) -> Voice:
        """One of the caller's voices; another user's is as missing as a non-existent one."""
        async with self.db.user_statement(claims.raw) as conn:
            return await _visible_voice(conn, voice_id)

    async def rename_voice(self, claims: UserClaims, voice_id: uuid.UUID, rename: Rename) -> Voice:
        """Give one of the caller's voices a new name; 404 for anyone else's or a deleted one, 409 (VoiceNameTaken)
        when another of their live voices has that name, compared without case or outer spaces."""
        name = rename.name.strip()
        async with self.db.user_transaction(claims.raw) as conn:
            with name_of_its_own(name):
                renamed = await fetch_optional(conn, _Q["rename_voice"], {"id": voice_id, "name": name})
            if renamed is None:
                raise NotFound("Voice not found.")
            return await _visible_voice(conn, voice_id)

    async def soft_delete_voice(self, claims: UserClaims, voice_id: uuid.UUID) -> None:
        """Hide the voice from its owner, then remove its manifest (`voice-metadata`). Runs as the service (RLS
        hides deleted rows, so an owner's own UPDATE could not set `deleted_at`); the owner check is in the
        statement itself, after the caller's account's (a removed user's voices went with them: 401, not 404). The
        deletion commits before Storage is called, so no transition on the voice waits on
        Storage; a manifest Storage cannot remove now is removed by the worker's sweep (`clone.manifest`).

        Samples kept for re-enrolment live only as long as their voice: they are purged after (one that
        cannot be, Storage being down, goes with the retention sweep once it expires), and inline
        self-hosted references go with the voice row (a trigger)."""
        owner_id = uuid.UUID(claims.sub)
        async with self.db.service_pipeline() as conn:
            await owners.require_owner(conn, owner_id)
            row = await fetch_optional(conn, _Q["soft_delete_voice"], {"id": voice_id, "owner_id": owner_id})
        if row is None:
            raise NotFound("Voice not found.")
        if row["status"] == VoiceStatus.DRAFT:
            await self._remove_draft_upload(owner_id, voice_id)
        try:
            await remove_manifest(self.db, self.storage, owner_id, voice_id)
        except ServiceUnavailable as exc:
            log.warning("deleted voice %s: its manifest is left to the sweep: %s", voice_id, exc)
        try:
            await samples.purge_kept_samples(self.db, self.storage, voice_id, actor=f"user:{claims.sub}")
        except ServiceUnavailable:
            log.exception("could not purge the kept samples of deleted voice %s yet", voice_id)

    async def _remove_draft_upload(self, owner_id: uuid.UUID, voice_id: uuid.UUID) -> None:
        """Remove a deleted draft's upload now rather than leave it to the orphan sweep; one Storage cannot remove
        now (it is down) is left to that sweep."""
        try:
            await self.storage.remove(samples.BUCKET, [paths.voice_sample(owner_id, voice_id)])
        except ServiceUnavailable as exc:
            log.warning("deleted draft %s: its upload is left to the orphan sweep: %s", voice_id, exc)

    async def wait_for_voice(self, claims: Mapping[str, Any], voice_id: uuid.UUID, seconds: int) -> Voice | None:
        """The voice once it is ready or failed, read under the caller's RLS; None if `seconds` pass first.

        Polls every 200 ms: one indexed read per poll, for at most one waiting request per finalize.
        """
        deadline = time.monotonic() + seconds
        while True:
            async with self.db.user_statement(claims) as conn:
                voice = await _visible_voice(conn, voice_id)
            if voice.status in _FINISHED:
                return voice
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    async def create_voice(self, claims: UserClaims, body: NewVoiceBody) -> VoiceSamples:
        """A new voice of the caller enrolled from their samples: the voice and its attempt in one transaction."""
        owner_id = uuid.UUID(claims.sub)
        async with speakers_judged(self.db, claims) as judge, self.db.user_transaction(claims.raw) as conn:
            consent = await judge.consent(conn, body.consent_id)
            rows = await ready_samples(conn, owner_id, body.sample_ids)
            judge.one_speaker(rows, consent)
            first = rows[0]
            name = (
                VoiceName(body.name.strip(), given=True)
                if body.name
                else VoiceName(first.name or f"Voice from {len(rows)} samples", given=False)
            )
            source = enrolment_of(
                rows,
                self.settings.provider_settings,
                name=name,
                voice_id=None,
                limits=self.settings.user_limits,
                consent_id=body.consent_id,
            )
            attempt = await start_clone(conn, owner_id, source)
        return accepted_set(attempt, rows)

    async def replace_samples(self, claims: UserClaims, voice_id: uuid.UUID, body: SamplesBody) -> VoiceSamples:
        """Enrol the caller's voice again from these samples (add or remove some): a new attempt; the voice
        speaks as before until it is ready. 409 while another clone of the voice is under way."""
        owner_id = uuid.UUID(claims.sub)
        async with speakers_judged(self.db, claims) as judge, self.db.user_transaction(claims.raw) as conn:
            if not await voice_rows.visible(conn, voice_id):
                raise NotFound("Voice not found.")
            consent = await judge.consent(conn, body.consent_id)
            rows = await ready_samples(conn, owner_id, body.sample_ids)
            judge.one_speaker(rows, consent)
            voice = await voice_rows.lock_live(conn, voice_id, owner_id)
            if voice is None:
                raise NotFound("Voice not found.")  # deleted since the caller's check
            if await attempts.open_for_voice(conn, voice_id) is not None:
                raise Conflict("The voice is still being cloned; change its samples once that has finished.")
            name = VoiceName(voice.name, given=True)  # unused: the voice is there already
            source = enrolment_of(
                rows,
                self.settings.provider_settings,
                name=name,
                voice_id=voice_id,
                limits=self.settings.user_limits,
                consent_id=body.consent_id,
            )
            attempt = await start_clone(conn, owner_id, source)
        return accepted_set(attempt, rows)

    async def voice_samples(self, claims: UserClaims, voice_id: uuid.UUID) -> VoiceSamples:
        """The caller's voice's samples and their report; 404 for another's voice or one made from a single
        sample the older way (no set)."""
        async with self.db.user_transaction(claims.raw) as conn:
            if not await voice_rows.visible(conn, voice_id):
                raise NotFound("Voice not found.")
            rows = await fetch_records(conn, _Q["voice_set"], {"voice_id": voice_id}, _SetRow)
        if not rows:
            raise NotFound("The voice was not made from a set of samples.")
        return VoiceSamples(
            voice_id=voice_id,
            attempt_id=rows[0].attempt_id,
            attempt_status=rows[0].attempt_status,
            sample_ids=[row.sample_id for row in rows],
            quality=report_of(rows),
        )

    async def create_upload(self, claims: UserClaims, request: UploadUrlBody, *, origin: Origin) -> UploadTicket:
        """Record consent (or take the verified spoken one named, as the consent policy allows) and a draft voice,
        and hand out a signed URL for its sample (at Storage's public address). The URL is signed first: if
        Storage is unreachable nothing has been written yet. 429 `creates_limited` past the caller's voice creates,
        `draft_voices_limited` once they have `draft_voices` drafts.
        """
        name = request.name.strip()
        consent = GivenConsent(
            checkbox=request.consent,
            consent_id=request.consent_id,
            subject_name=request.subject_name or name,
            origin=origin,
            policy=self.settings.consent,
            keep_sample=request.keep_sample,
        )
        require_consent(consent)
        owner_id, voice_id = uuid.UUID(claims.sub), uuid.uuid4()
        path = paths.voice_sample(owner_id, voice_id)
        signed = await self.storage.create_signed_upload_url(samples.BUCKET, path)
        limits = self.settings.user_limits
        async with self.db.user_transaction(claims.raw) as conn:
            given = VoiceName(name, given=True)
            await draft_voice(
                conn, owner_id, voice_id, name=given, language=request.language, consent=consent, limits=limits
            )
            # Counted under the caller's lock on voice creates, which draft_voice took: this draft included.
            drafts = await fetch_one(conn, _Q["draft_count"], {"owner_id": owner_id})
            if drafts["n"] > limits.draft_voices:
                raise DraftVoicesLimited(
                    f"You have {limits.draft_voices} draft voices, as many as this server allows: finalize one"
                    " (POST /api/clone/finalize) or delete one (DELETE /api/voices/{id}) first."
                )
        public_url = self.settings.storage_public_url
        return UploadTicket(
            voice_id=voice_id,
            bucket=samples.BUCKET,
            path=path,
            upload_url=f"{public_url}/object/upload/sign/{samples.BUCKET}/{path}?token={signed.token}",
            token=signed.token,
            content_types=list(declared_bucket(samples.BUCKET).allowed_mime_types or ()),
        )

    async def finalize(
        self, claims: UserClaims, request: FinalizeBody, *, record: Recorder | None = None
    ) -> FinalizedClone:
        """Check the language (the provider makes voices in it) and the uploaded sample (present, within limits,
        really audio), then in one transaction record it and queue the clone attempt. Nothing is written when
        any check fails.

        `record` (an Idempotency-Key's) gets the result in that transaction, just before it commits.
        """
        provider = self.settings.provider_settings.usable(request.provider)
        owner_id = uuid.UUID(claims.sub)
        path = paths.voice_sample(owner_id, request.voice_id)

        async with self.db.user_transaction(claims.raw) as conn:
            draft = await lock_draft(conn, request.voice_id)
            if request.reflection_id is not None:
                await reflection_rows.require_visible(conn, request.reflection_id)
        check_enrolment_language(provider, request.language or draft["language"])

        new = await samples.check_signed_upload(
            self.storage,
            sample_id=uuid.uuid4(),
            owner_id=owner_id,
            voice_id=request.voice_id,
            path=path,
            provider=provider,
            transcript=request.transcript,
            language=request.language,
        )
        async with self.db.user_transaction(claims.raw) as conn:
            source = FinalizedUpload(
                voice_id=request.voice_id,
                sample=new,
                name=request.name.strip() if request.name else None,
                reflection_id=request.reflection_id,
                retention_days=self.settings.sample_retention_days,
            )
            attempt = await start_clone(conn, owner_id, source)
            finalized = FinalizedClone(
                request.voice_id, attempt.id, new.sample_id, provider, attempt.status, new.sniffed_type
            )
            if record is not None:
                await record(conn, finalized)
        return finalized
