"""What the `/api/voices` routes take and answer: a voice with what its provider recorded, a list of them, a new voice
from a set of samples and a set's report, and the upload-then-finalize flow's ticket, bodies and queued clone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from backend.audio.voice_set import SetReport
from backend.clone import (
    LikenessSource,
    NoLikeness,
    StartedClone,
)
from backend.domain.voices import VoiceFields
from backend.fields import Label, LanguageTag, Name, Text
from backend.providers.config import Provider


def _member(kind: str | list[str], words: str, **more: object) -> dict[str, object]:
    return {"type": kind, "description": words, **more}


_TEXT_OR_NULL = ["string", "null"]
#: What the providers record about a voice, as far as its shape is fixed: each member is written by the
#: provider(s) named in its words, and a provider may add others (`additionalProperties`).
PROVIDER_METADATA_MEMBERS: dict[str, object] = {
    "engine": _member("string", "local: the offline engine that speaks the voice."),
    "profile": _member("object", "local: the profile measured from the sample, which the engine adapts its voice to."),
    "region": _member("string", "qwen: the DashScope region (`intl` or `cn`) the voice lives in."),
    "preferred_name": _member("string", "qwen: the name asked for at enrolment."),
    "fallback_mode": _member(_TEXT_OR_NULL, "qwen: how DashScope fell back, if it did."),
    "fallback_reason": _member(_TEXT_OR_NULL, "qwen: why DashScope fell back, if it did."),
    "usage": _member(["object", "null"], "qwen: the usage DashScope reported for the enrolment."),
    "gmt_modified": _member(_TEXT_OR_NULL, "qwen: when DashScope last changed the voice."),
    "requires_verification": _member("boolean", "elevenlabs: the voice awaits ElevenLabs' verification."),
    "labels": _member("object", "elevenlabs: the voice's labels.", additionalProperties={"type": "string"}),
    "remove_background_noise": _member("boolean", "elevenlabs: its noise removal was asked for."),
    "sample_snr_db": _member(["number", "null"], "elevenlabs: the lowest SNR of its samples (dB)."),
    "category": _member(_TEXT_OR_NULL, "elevenlabs: the voice's category (`cloned`)."),
    "description": _member(_TEXT_OR_NULL, "elevenlabs, cartesia: the voice's description."),
    "cartesia_version": _member("string", "cartesia: the API version the voice was made with."),
    "language": _member(_TEXT_OR_NULL, "cartesia: the voice's language."),
    "mode": _member("string", "selfhosted: how the server keeps the voice (`registry`, `chatterbox` or `inline`)."),
    "name": _member("string", "selfhosted: the voice's name at the server."),
    "consent": _member(_TEXT_OR_NULL, "selfhosted: the consent the server recorded."),
    "voice_name": _member("string", "selfhosted (inline): the name voicegate keeps the reference under."),
    "preview": _member("object", "Where the clone's preview is stored (`bucket`, `path`)."),
    "adopted": _member("object", "An operator's reconcile adopted the voice (`by`, `run_id`)."),
}
ProviderMetadata = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="What the voice's provider recorded about it (the members depend on the provider).",
        extra_json_schema={"extra": {"properties": PROVIDER_METADATA_MEMBERS}},
    ),
]
#: ElevenLabs' instant cloning takes up to 25 files, the most any provider takes.
MAX_SAMPLES: Final = 25
SampleIds = Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=MAX_SAMPLES)]


class Voice(VoiceFields, frozen=True):
    """A voice as the `/api/voices` routes return it (snake_case, as the source documents name it)."""

    provider_metadata: ProviderMetadata
    created_at: datetime
    updated_at: datetime
    #: `c2pa` once the voice is ready: everything voicegate synthesizes in it carries a C2PA manifest.
    provenance: str | None = None
    #: How much the voice sounds like its samples: the cosine between their voiceprints and the voiceprint of
    #: what its provider spoke in it (0-1), null until judged or when it could not be (`likeness_error`).
    likeness: float | None = None
    #: The published same-speaker threshold the likeness was judged against: from it, the voice would pass as
    #: the samples' speaker.
    likeness_threshold: float | None = None
    #: What the provider spoke that was judged: `probe` (a sentence as the enrolment ended), `preview`, `render`.
    likeness_source: LikenessSource | None = None
    #: Why there is no likeness: `probe_failed`, `no_speech` or `no_sample`.
    likeness_error: NoLikeness | None = None
    #: What the bundled `local` voice as it ships (speaking the same sentence) scored against the same samples: a
    #: voice that is not the speaker's, and for the offline voice the voice before its adaptation; null for a
    #: voice that is not English, which it does not speak, and until judged.
    likeness_baseline: float | None = None


class VoiceList(msgspec.Struct):
    """The caller's voices, newest first."""

    voices: list[Voice]


class NewVoiceBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """`POST /api/voices`: a voice from `sampleIds` (in the order they are sent to the provider)."""

    sample_ids: SampleIds
    #: The voice's name (default: the first sample's name, else "Voice from N samples").
    name: Label | None = None
    #: A verified spoken consent every sample's speaker must match (`speaker_mismatch` otherwise).
    consent_id: uuid.UUID | None = None


class SamplesBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """`PUT /api/voices/{id}/samples`: the samples the voice is enrolled from from now on."""

    sample_ids: SampleIds
    #: A verified spoken consent every sample's speaker must match (`speaker_mismatch` otherwise).
    consent_id: uuid.UUID | None = None


class VoiceSamples(msgspec.Struct, rename="camel"):
    """A voice's samples (those of its newest attempt made from a set) and their quality report."""

    voice_id: uuid.UUID
    #: The attempt that enrols them, and its status (`ready` once the voice speaks from this set).
    attempt_id: uuid.UUID
    attempt_status: str
    sample_ids: list[uuid.UUID]
    quality: SetReport


class UploadTicket(msgspec.Struct):
    """Where and how to upload the sample of a new draft voice."""

    voice_id: uuid.UUID
    bucket: str
    path: str
    upload_url: str
    token: str
    #: The content types the upload may declare (its `Content-Type`, or a multipart file part's): the
    #: bucket refuses any other with 415, the stock clients' `text/plain` default included.
    content_types: list[str]


class UploadUrlBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/clone/upload-url`."""

    name: Name
    consent: bool = False
    #: A verified spoken consent to make the voice under (`POST /api/v1/consents`), instead of the checkbox.
    consent_id: uuid.UUID | None = None
    language: LanguageTag | None = None
    subject_name: Name | None = None
    #: The optional consent to keep the sample while the voice exists (see `SampleForm.keep_sample`).
    keep_sample: bool = False


class FinalizeBody(msgspec.Struct, forbid_unknown_fields=True):
    """Body of `POST /api/clone/finalize`."""

    voice_id: uuid.UUID
    name: Name | None = None
    language: LanguageTag | None = None
    transcript: Text | None = None
    provider: Provider | None = None
    reflection_id: uuid.UUID | None = None


class FinalizedClone(StartedClone):
    """The queued clone attempt of a finalized voice."""
