"""The samples area: a sample's upload path (`upload`: consent, checks, object, row), the `voice_sample_process`
worker's check (`check`, run by `step`), its purge (`purge`), the owner's service (`service`: `SamplesService`)
and what the routes answer (`types`). The `/api/v1/voice-samples` routes and their multipart reader are
`backend.http.routes.samples`.

This module is the area's public face: another area imports what is listed here, and nothing else of it."""

from backend.samples.check import EnrolmentSample, SampleCheck, SampleGone
from backend.samples.purge import purge_kept_samples
from backend.samples.upload import (
    BUCKET,
    NewSample,
    SampleUpload,
    check_signed_upload,
    check_upload,
    consent_for_sample,
    consent_voiceprint,
    insert_sample,
    link_voice,
    stored_upload,
    visible,
)

__all__ = [
    "BUCKET",
    "EnrolmentSample",
    "NewSample",
    "SampleCheck",
    "SampleGone",
    "SampleUpload",
    "check_signed_upload",
    "check_upload",
    "consent_for_sample",
    "consent_voiceprint",
    "insert_sample",
    "link_voice",
    "purge_kept_samples",
    "stored_upload",
    "visible",
]
