"""The upload-then-finalize clone flow (`/api/clone/...`): a signed upload URL for a consented draft
voice, then a checked sample and a queued attempt, all or nothing. Here are what it is asked for and answers;
`backend.voices.service.VoicesService` runs it (`create_upload`, `finalize`)."""

from __future__ import annotations

import uuid

import msgspec

from backend.clone import StartedClone
from backend.fields import LanguageTag, Name, Text
from backend.providers.config import Provider


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


class FinalizedClone(StartedClone):
    """The queued clone attempt of a finalized voice."""


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
