"""Starting a clone: the one place that makes a clone attempt and the voice and sample rows it needs.

Each caller names its `Source`, checks what needs no rows (provider, language, audio, Storage), keeps or
removes objects, and owns the transaction `start_clone` writes on. The attempt's insert queues
`voice_clone_process` and, for a reflection, supersedes its active attempt and rewrites its mirror (SQL
triggers): all of it commits with the caller's own writes (an Idempotency-Key's record, say) or not at all.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, assert_never

import msgspec

from backend import samples
from backend.db.connection import Connection
from backend.db.execute import fetch_optional
from backend.db.queries import load_queries
from backend.db.units import become_service
from backend.domain.attempts import AttemptRow, AttemptSource
from backend.domain.limits import UserLimits
from backend.errors import Conflict, NotFound, ProviderVoiceTaken, VoiceNameTaken
from backend.policy.consent import GivenConsent
from backend.providers.base import ProviderVoice
from backend.providers.registry import check_speakable
from backend.records import attempts, user_creates
from backend.records.sample_rows import VoiceSampleStatus
from backend.records.user_creates import CreateKind
from backend.records.voice_rows import VoiceName, name_of_its_own, unused_name
from backend.samples import NewSample, consent_for_sample

_Q = load_queries(Path(__file__).with_suffix(".sql"))

#: Looks for a free name for a voice voicegate names: a look is lost only to another voice of the same owner
#: that took that very name meanwhile, so even a second one is rare.
_NAMING_TRIES = 5


class _Sampled(msgspec.Struct, frozen=True, kw_only=True):
    """A checked sample already stored at `sample.path`, for the caller's voice `voice_id`. The voice's
    preview must be heard before its reflection launches."""

    voice_id: uuid.UUID
    sample: NewSample
    reflection_id: uuid.UUID | None
    retention_days: float
    kind = AttemptSource.SAMPLE_UPLOAD
    preview = True

    @property
    def provider(self) -> str:
        """The provider the sample was checked for."""
        return self.sample.provider


class Upload(_Sampled, frozen=True, kw_only=True, tag="upload"):
    """A sample uploaded with the request: a new voice `name` under the consent given with it, counted against
    the caller's `limits`."""

    name: VoiceName
    consent: GivenConsent
    limits: UserLimits


class FinalizedUpload(_Sampled, frozen=True, kw_only=True, tag="finalize"):
    """The finalize of a signed upload: the caller's draft voice, under the consent it was made with,
    renamed to `name` (the caller's: VoiceNameTaken when another of their voices has it) and `sample.language`
    (None keeps its own)."""

    name: str | None


class CustomVoiceId(msgspec.Struct, frozen=True, kw_only=True, tag="custom_voice_id"):
    """A voice the caller has at `provider`, as the provider described it (`found`), for their reflection.
    No preview: its owner has heard it there."""

    provider: str
    found: ProviderVoice
    name: str | None
    language: str | None
    reflection_id: uuid.UUID
    #: What a new voice (when none of the caller's holds the provider voice) is counted against.
    limits: UserLimits
    kind = AttemptSource.CUSTOM_VOICE_ID
    preview = False


class StoredSample(msgspec.Struct, frozen=True, kw_only=True, tag="sample"):
    """A sample stored before, locked by the caller, cloned for a synthesis job (no reflection, so no
    preview) into `voice_id`, its voice whose clone failed, or else into a new voice `name`."""

    sample_id: uuid.UUID
    consent_id: uuid.UUID
    provider: str
    language: str | None
    voice_id: uuid.UUID | None
    name: VoiceName
    #: What a new voice is counted against.
    limits: UserLimits
    kind = AttemptSource.SAMPLE_UPLOAD
    preview = False
    reflection_id = None


class SampleSet(msgspec.Struct, frozen=True, kw_only=True, tag="sample_set"):
    """The caller's ready samples, locked, enrolled together in this order (`backend.voices.sample_sets`
    checked them): into a new voice `name` under the first one's consent, or into their voice `voice_id`,
    which keeps its provider voice until this attempt is ready (a re-enrolment, as `Reenrolment`'s)."""

    sample_ids: tuple[uuid.UUID, ...]
    consent_id: uuid.UUID
    provider: str
    language: str | None
    name: VoiceName
    #: What a new voice is counted against.
    limits: UserLimits
    voice_id: uuid.UUID | None = None
    kind = AttemptSource.SAMPLE_UPLOAD
    preview = False
    reflection_id = None


class Reenrolment(msgspec.Struct, frozen=True, kw_only=True, tag="reenrolment"):
    """A voice, locked by the caller, given a provider voice at `provider` again (`kind`:
    `provider_migration` or `provider_churn`): reusing a reference it had there (`provider_voice_id`,
    `target_model`) or enrolling its stored `sample_id` (or its set, `sample_ids`, the first being
    `sample_id`). It keeps its old one until the new one is ready."""

    voice_id: uuid.UUID
    provider: str
    kind: AttemptSource
    sample_id: uuid.UUID | None
    sample_ids: tuple[uuid.UUID, ...] = ()
    reflection_id: uuid.UUID | None
    preview: bool
    provider_voice_id: str | None = None
    target_model: str | None = None


Source = Upload | FinalizedUpload | CustomVoiceId | StoredSample | SampleSet | Reenrolment


async def start_clone(conn: Connection, owner_id: uuid.UUID, source: Source) -> AttemptRow:
    """`owner_id`'s clone attempt from `source`, with the voice and sample rows it needs, on the caller's
    transaction. On a user transaction the caller's RLS decides what they may use (their consent, their
    draft), then the service writes; a StoredSample or a Reenrolment comes as the service already.
    NotFound, Conflict, ProviderVoiceTaken, VoiceNameTaken (a name the caller gave that another of their live
    voices has) or LanguageNotSupported when the source cannot be used; CreatesLimited when it would make a voice
    past the caller's creates."""
    sample_id: uuid.UUID | None = None
    sample_ids: tuple[uuid.UUID, ...] = ()
    reference: tuple[str | None, str | None] = (None, None)
    match source:
        case Upload(voice_id=voice_id):
            language = source.sample.language
            consent_id = await draft_voice(
                conn,
                owner_id,
                voice_id,
                name=source.name,
                language=language,
                consent=source.consent,
                limits=source.limits,
            )
            sample_id = await _store(conn, source, consent_id)
        case FinalizedUpload(voice_id=voice_id):
            sample_id = await _store(conn, source, (await lock_draft(conn, voice_id))["consent_id"])
            params = {"id": voice_id, "name": source.name, "language": source.sample.language}
            with name_of_its_own(source.name or ""):
                await conn.execute(_Q["name_voice"], params)
        case CustomVoiceId(found=found):
            voice_id, reference = await _custom_voice(conn, owner_id, source), (found.voice_id, found.target_model)
        case StoredSample(sample_id=sample_id):
            # A sample whose voice's clone failed is cloned again into that voice.
            voice_id = source.voice_id or await _new_voice(
                conn, owner_id, source.name, source.language, source.limits, consent_id=source.consent_id
            )
            if source.voice_id is None:
                await samples.link_voice(conn, sample_id, voice_id)
        case SampleSet(sample_ids=sample_ids):
            sample_id = sample_ids[0]
            voice_id = source.voice_id or await _new_voice(
                conn, owner_id, source.name, source.language, source.limits, consent_id=source.consent_id
            )
        case Reenrolment(voice_id=voice_id, sample_id=sample_id, sample_ids=sample_ids):
            reference = (source.provider_voice_id, source.target_model)
        case _:
            assert_never(source)
    return await attempts.create(
        conn,
        owner_id=owner_id,
        voice_id=voice_id,
        provider=source.provider,
        sample_id=sample_id,
        source=source.kind,
        reflection_id=source.reflection_id,
        preview=source.preview,
        provider_voice_id=reference[0],
        target_model=reference[1],
        sample_ids=sample_ids,
    )


async def draft_voice(
    conn: Connection,
    owner_id: uuid.UUID,
    voice_id: uuid.UUID,
    *,
    name: VoiceName,
    language: str | None,
    consent: GivenConsent,
    limits: UserLimits,
) -> uuid.UUID:
    """The caller's (`owner_id`'s) consent (a verified spoken one they name, or the box they ticked, recorded now,
    as the caller: RLS decides whose consent they may name) and their draft voice under it, written by the service
    once that consent is known to be theirs, and counted against their `limits`; the consent's id."""
    consent_id = await consent_for_sample(conn, consent)
    await become_service(conn)
    await _insert_voice(conn, {"id": voice_id, "language": language, "consent_id": consent_id}, owner_id, name, limits)
    return consent_id


async def _insert_voice(
    conn: Connection, params: dict[str, Any], owner_id: uuid.UUID, name: VoiceName, limits: UserLimits
) -> None:
    """Insert `owner_id`'s voice as the service, counted against their `limits` first (every new voice is made
    here), named `name`: as given, or VoiceNameTaken; as chosen, or the first free `name (2)`, `name (3)`…"""
    await user_creates.take(conn, owner_id, CreateKind.VOICE, limits)
    params = {"provider": None, **params, "owner_id": owner_id}
    if name.given:
        if await fetch_optional(conn, _Q["insert_voice"], params | {"name": name.text}) is None:
            raise VoiceNameTaken(name.text)
        return
    for _ in range(_NAMING_TRIES):
        free = await unused_name(conn, owner_id, name.text)
        if await fetch_optional(conn, _Q["insert_voice"], params | {"name": free}) is not None:
            return
    raise VoiceNameTaken(name.text)


async def lock_draft(conn: Connection, voice_id: uuid.UUID) -> dict[str, Any]:
    """The caller's draft voice, row-locked; NotFound for another's, Conflict once it left `draft`."""
    voice = await fetch_optional(conn, _Q["lock_draft"], {"id": voice_id})
    if voice is None:
        raise NotFound("Voice not found.")
    if voice["status"] != "draft":
        raise Conflict(f"The voice is already {voice['status']}; start a new voice to clone again.")
    return voice


async def _store(conn: Connection, source: _Sampled, consent_id: uuid.UUID) -> uuid.UUID:
    """The uploaded sample's row, as the service: `ready`, since the attempt checks the audio itself."""
    await become_service(conn)
    days = source.retention_days
    await samples.insert_sample(conn, source.sample, consent_id, status=VoiceSampleStatus.READY, retention_days=days)
    return source.sample.sample_id


async def _custom_voice(conn: Connection, owner_id: uuid.UUID, source: CustomVoiceId) -> uuid.UUID:
    """The caller's voice row holding the provider voice, or a new one. A provider voice attached to
    someone else's voice, or cloned by voicegate from someone else's sample, is not the caller's: one
    shared provider account must not leak voices between users. Only then is its language checked (as
    the provider keeps it and as the caller names it), so only its owner learns it."""
    await become_service(conn)
    found, key = source.found, source.found.enrolment_key
    holder = await fetch_optional(conn, _Q["holder"], {"provider": source.provider, "voice_id": found.voice_id})
    if holder is not None and holder["owner_id"] != owner_id:
        raise ProviderVoiceTaken
    if holder is None and key is not None and not await attempts.enrolled_by(conn, owner_id, key):
        raise ProviderVoiceTaken
    check_speakable(source.provider, found.language)
    check_speakable(source.provider, source.language)
    if holder is not None:
        held: uuid.UUID = holder["id"]
        return held
    given = source.name.strip() if source.name else None
    name = VoiceName(given, given=True) if given else VoiceName(found.name or "Custom voice", given=False)
    return await _new_voice(conn, owner_id, name, source.language, source.limits, provider=source.provider)


async def _new_voice(
    conn: Connection,
    owner_id: uuid.UUID,
    name: VoiceName,
    language: str | None,
    limits: UserLimits,
    *,
    consent_id: uuid.UUID | None = None,
    provider: str | None = None,
) -> uuid.UUID:
    """A voice of `owner_id`, as the service: cloned from their sample (`consent_id`), or one they have
    at `provider`; counted against their `limits`."""
    voice_id = uuid.uuid4()
    params = {"id": voice_id, "language": language, "consent_id": consent_id, "provider": provider}
    await _insert_voice(conn, params, owner_id, name, limits)
    return voice_id
