"""Reflections, the voice state clients read, their attempts, preview completion and launch, and the voice from
an upload or from a voice the user already has at a provider (`ReflectionsService`, the routes' use cases).

Every use case runs as the caller (RLS decides what they see); writes users may not make themselves
(an attempt's transition, a retry attempt) switch the transaction to the service after the caller's
read, so the read fences the write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from backend import samples
from backend.audio.formats import SPEECH_FORMATS
from backend.auth.verify import UserClaims
from backend.clone import CustomVoiceId, Upload, start_clone
from backend.db.connection import Connection
from backend.db.execute import fetch_all, fetch_one, fetch_optional
from backend.db.queries import load_queries
from backend.db.units import Database, Recorder, become_service
from backend.domain.attempts import RETRYABLE, Attempt, AttemptRow, PreviewStatus, VoiceMirror, view
from backend.errors import (
    Conflict,
    LaunchBlocked,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    ProviderVoiceNotFound,
    StoredObjectAltered,
)
from backend.policy.launch import LaunchVoice, launch_voice
from backend.provenance import PROVENANCE
from backend.providers.errors import (
    PermanentProviderError,
    TransientProviderError,
    UnknownOutcomeError,
    VoiceNotFoundError,
)
from backend.providers.registry import ProviderSet
from backend.records import attempts, reflection_rows, user_creates
from backend.records.user_creates import CreateKind
from backend.records.voice_rows import VoiceName
from backend.reflections.types import CustomVoice, QueuedClone, Reflection, RuntimeVoice, Session, VoiceState
from backend.settings import Settings
from backend.storage import integrity, paths
from backend.storage.client import ObjectStorage

_Q = load_queries(Path(__file__).with_suffix(".sql"))
LIST_LIMIT = 200
PREVIEW_URL_SECONDS = 600


@dataclass(frozen=True)
class ReflectionsService:
    """A user's reflections and their voice: the use cases over the database, Storage (where a sample and a
    preview are kept), the providers' adapters (that find a voice the user has at one) and the settings read
    at start-up (the consent policy, the providers' sample rules, the samples' retention)."""

    db: Database
    storage: ObjectStorage
    providers: ProviderSet
    settings: Settings

    async def create_reflection(self, claims: UserClaims, name: str) -> Reflection:
        """Create a reflection owned by the caller; 429 `creates_limited` past the caller's creates."""
        owner_id = uuid.UUID(claims.sub)
        async with self.db.service_transaction() as conn:
            await user_creates.take(conn, owner_id, CreateKind.REFLECTION, self.settings.user_limits)
            return _as_reflection(await fetch_one(conn, _Q["create_reflection"], {"owner_id": owner_id, "name": name}))

    async def list_reflections(self, claims: UserClaims) -> list[Reflection]:
        """The caller's reflections, newest first."""
        async with self.db.user_statement(claims.raw) as conn:
            rows = await fetch_all(conn, _Q["list_reflections"], {"limit": LIST_LIMIT})
        return [_as_reflection(row) for row in rows]

    async def get_reflection(self, claims: UserClaims, reflection_id: uuid.UUID) -> Reflection:
        """One of the caller's reflections; another user's is as missing as a non-existent one."""
        async with self.db.user_statement(claims.raw) as conn:
            return await _reflection(conn, reflection_id)

    async def voice_state(self, claims: UserClaims, reflection_id: uuid.UUID) -> VoiceState:
        """The reflection's voice mirror, whether it may launch, and a signed URL of the active attempt's
        preview when there is one to hear (checked against the digest recorded when it was stored)."""
        async with self.db.user_statement(claims.raw) as conn:
            ready = await reflection_rows.readiness(conn, reflection_id)
        state = VoiceState(ready.reflection_id, ready.voice, ready.ready, ready.reasons)
        attempt_id = state.voice.attempt_id
        if attempt_id and state.voice.preview_status in {PreviewStatus.READY, PreviewStatus.COMPLETED}:
            path = paths.preview(uuid.UUID(claims.sub), attempt_id)
            # A preview purged from Storage (or never uploaded), or altered since, leaves the state readable,
            # without a URL: the state is what clients poll, the preview only a part of it.
            try:
                state.preview_url = await integrity.signed_url(
                    self.db,
                    self.storage,
                    paths.PREVIEWS,
                    path,
                    PREVIEW_URL_SECONDS,
                    actor=f"user:{claims.sub}",
                    subject=("voice_clone_attempt", str(attempt_id)),
                )
            except NotFound:
                return state
            except StoredObjectAltered as exc:
                state.preview_error = exc.code
                return state
            state.provenance = PROVENANCE
        return state

    async def list_attempts(self, claims: UserClaims, reflection_id: uuid.UUID) -> list[Attempt]:
        """The reflection's attempts, newest first."""
        async with self.db.user_transaction(claims.raw) as conn:
            await _reflection(conn, reflection_id)
            rows = await attempts.list_for_reflection(conn, reflection_id, LIST_LIMIT)
        return [view(row) for row in rows]

    async def get_attempt(self, claims: UserClaims, reflection_id: uuid.UUID, attempt_id: uuid.UUID) -> Attempt:
        """One attempt of one of the caller's reflections."""
        async with self.db.user_statement(claims.raw) as conn:
            return view(await attempts.get_for_reflection(conn, reflection_id, attempt_id))

    async def complete_preview(self, claims: UserClaims, reflection_id: uuid.UUID) -> Attempt:
        """Mark the active attempt's preview as heard (`ready → completed`), which opens the launch gate.

        The attempt is read under the caller's RLS; the move runs on a service transaction (users never
        call the transition function themselves), fenced by the version read.
        """
        async with self.db.user_transaction(claims.raw) as conn:
            attempt = await _active_attempt(conn, reflection_id)
        if attempt.preview_status != PreviewStatus.READY:
            raise Conflict(f"The preview is {attempt.preview_status}, not ready to complete.")
        async with self.db.service_transaction() as conn:
            completed = await attempts.transition(conn, attempt, f"user:{claims.sub}", preview=PreviewStatus.COMPLETED)
        return view(completed)

    async def retry_clone(
        self, claims: UserClaims, reflection_id: uuid.UUID, record: Recorder | None = None
    ) -> Attempt:
        """Start a new attempt from the active one's voice and sample when it failed or was canceled.

        The active attempt is read under the caller's RLS, then the transaction becomes the service to
        insert (the insert supersedes the old attempt and enqueues). `record` (an Idempotency-Key's) gets
        the new attempt last, so it commits with the insert.
        """
        async with self.db.user_transaction(claims.raw) as conn:
            current = await _active_attempt(conn, reflection_id)
            if current.status not in RETRYABLE:
                raise Conflict(f"Only a failed or canceled clone can be retried; this one is {current.status}.")
            await become_service(conn)
            attempt = view(await attempts.retry(conn, current.id))
            if record is not None:
                await record(conn, attempt)
        return attempt

    async def launch_session(self, claims: UserClaims, reflection_id: uuid.UUID) -> Session:
        """Launch a session when the voice is ready, synced and previewed; else LaunchBlocked with reasons.
        The session says how a runtime speaks in the voice."""
        async with self.db.user_transaction(claims.raw) as conn:
            launch = launch_voice(await reflection_rows.launch_row(conn, reflection_id))
            row = await fetch_one(
                conn, _Q["create_session"], {"reflection_id": reflection_id, "attempt_id": launch.attempt_id}
            )
        return Session(**row, launch_ready=True, blocking_reasons=[], runtime=_runtime(reflection_id, launch))

    async def get_session(self, claims: UserClaims, session_id: uuid.UUID) -> Session:
        """One of the caller's sessions, with what a runtime needs to speak in its reflection's voice now."""
        async with self.db.user_transaction(claims.raw) as conn:
            row = await fetch_optional(conn, _Q["get_session"], {"id": session_id})
            if row is None:
                raise NotFound("Session not found.")
            try:
                launch = launch_voice(await reflection_rows.launch_row(conn, row["reflection_id"]))
            except LaunchBlocked as blocked:
                return Session(**row, launch_ready=False, blocking_reasons=blocked.reasons, runtime=None)
        return Session(**row, launch_ready=True, blocking_reasons=[], runtime=_runtime(row["reflection_id"], launch))

    async def clone_from_upload(
        self,
        claims: UserClaims,
        reflection_id: uuid.UUID,
        received: samples.SampleUpload,
        *,
        record: Recorder | None = None,
        resource_id: uuid.UUID | None = None,
        abandoned_id: uuid.UUID | None = None,
    ) -> QueuedClone:
        """Store a consented, sniffed sample and queue the reflection's clone attempt.

        `record` (an Idempotency-Key's) gets the result in the transaction that writes the rows.

        Every check runs before anything is stored; the object is uploaded before the rows are written and
        removed again if writing them fails, so a fault leaves neither an orphaned object nor a half row. The
        new voice is `resource_id` (a new id by default), its sample stored under it; `abandoned_id` is the
        voice an earlier, abandoned try of the same request may have stored it under (see
        `samples.stored_upload`).
        """
        owner_id, voice_id, sample_id = uuid.UUID(claims.sub), resource_id or uuid.uuid4(), uuid.uuid4()
        path = paths.voice_sample(owner_id, voice_id)
        abandoned = paths.voice_sample(owner_id, abandoned_id) if abandoned_id else None
        given = received.consent(self.settings.consent, subject_name=received.form.name or "My voice")
        new = samples.check_upload(
            received,
            given,
            self.settings.provider_settings,
            sample_id=sample_id,
            owner_id=owner_id,
            voice_id=voice_id,
            path=path,
        )
        async with self.db.user_transaction(claims.raw) as conn:
            await reflection_rows.require_visible(conn, reflection_id)

        async with (
            samples.stored_upload(self.storage, path, received.upload, new.sniffed_type, abandoned=abandoned),
            self.db.user_transaction(claims.raw) as conn,
        ):
            reflection_name = await reflection_rows.require_visible(conn, reflection_id)
            # Unnamed, the voice is named after its reflection ("Ada (2)" once an earlier clone's voice is "Ada").
            name = received.form.name.strip() if received.form.name else None
            source = Upload(
                voice_id=voice_id,
                sample=new,
                name=VoiceName(name, given=True) if name else VoiceName(reflection_name, given=False),
                consent=given,
                reflection_id=reflection_id,
                retention_days=self.settings.sample_retention_days,
                limits=self.settings.user_limits,
            )
            attempt = await start_clone(conn, owner_id, source)
            result = QueuedClone(voice_id, attempt.id, sample_id, new.provider, attempt.status, new.sniffed_type)
            if record is not None:
                await record(conn, result)
        return result

    async def attach_custom_voice(self, claims: UserClaims, reflection_id: uuid.UUID, custom: CustomVoice) -> Attempt:
        """Check the voice exists at the provider, in a language the provider speaks, and may be used by the
        caller, then attach it to the reflection through a `custom_voice_id` attempt (no preview: its owner has
        heard it already)."""
        provider_name = self.settings.provider_settings.usable(custom.provider)
        async with self.db.user_transaction(claims.raw) as conn:
            await reflection_rows.require_visible(conn, reflection_id)
        try:
            found = await self.providers.get(provider_name).get(custom.voice_id)
        except VoiceNotFoundError as exc:
            raise ProviderVoiceNotFound(f"{provider_name} has no voice {custom.voice_id!r}.") from exc
        except (TransientProviderError, UnknownOutcomeError) as exc:
            raise ProviderUnavailable(exc.safe_message) from exc
        except PermanentProviderError as exc:
            raise ProviderRejected(exc.safe_message) from exc

        source = CustomVoiceId(
            provider=provider_name,
            found=found,
            name=custom.name,
            language=custom.language,
            reflection_id=reflection_id,
            limits=self.settings.user_limits,
        )
        async with self.db.user_transaction(claims.raw) as conn:
            await reflection_rows.require_visible(conn, reflection_id)
            attempt = await start_clone(conn, uuid.UUID(claims.sub), source)
        return view(attempt)


async def _reflection(conn: Connection, reflection_id: uuid.UUID) -> Reflection:
    row = await fetch_optional(conn, _Q["get_reflection"], {"id": reflection_id})
    if row is None:
        raise NotFound("Reflection not found.")
    return _as_reflection(row)


def _as_reflection(row: dict[str, Any]) -> Reflection:
    """A `reflections` row as clients see it, its `voice` mirror typed."""
    return Reflection(**{**row, "voice": msgspec.convert(row["voice"], VoiceMirror)})


async def _active_attempt(conn: Connection, reflection_id: uuid.UUID) -> AttemptRow:
    await _reflection(conn, reflection_id)
    attempt = await attempts.active_for_reflection(conn, reflection_id)
    if attempt is None:
        raise Conflict("The reflection has no voice yet.")
    return attempt


def _runtime(reflection_id: uuid.UUID, launch: LaunchVoice) -> RuntimeVoice:
    return RuntimeVoice(
        voice_id=launch.voice_id,
        attempt_id=launch.attempt_id,
        provider=launch.voice.provider,
        provider_voice_id=launch.voice.voice_id,
        target_model=launch.voice.target_model,
        speech_path=f"/v1/reflections/{reflection_id}/speech",
        formats=list(SPEECH_FORMATS),
    )
