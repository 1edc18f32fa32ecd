"""What the two routes that start a clone from an uploaded sample answer, declared once for both: `POST
/api/clone/finalize` (`backend.voices.clone_flow.FinalizedClone`, snake_case) and `POST
/v1/reflections/{id}/voice/clone` (`backend.reflections.voice.QueuedClone`, its camelCase twin)."""

from __future__ import annotations

import uuid

import msgspec

from backend.records.attempts import AttemptStatus


class StartedClone(msgspec.Struct):
    """A clone started from an uploaded sample: the new voice, the stored sample and the queued attempt."""

    voice_id: uuid.UUID
    attempt_id: uuid.UUID
    sample_id: uuid.UUID
    provider: str
    status: AttemptStatus
    sniffed_type: str
