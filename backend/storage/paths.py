"""Where each kind of object voicegate keeps lives in Storage: its bucket, and its path inside it.

Every path begins with its owner's id, the folder the storage policies let the owner's token (and only it) reach;
the sweeps, the purges and the erasure find an owner's objects there. What else each kind is named after decides
who may replace it: a sample's processed copy has a fixed name beside its original, so a purge removes it even when
a worker wrote it but had not yet recorded it; a render, a preview and a manifest are named after the row they
belong to, so a second write of the same one replaces it instead of leaving two."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Final

#: Samples (uploaded, and their processed copies) and consents' recordings.
SAMPLES: Final = "voice-samples"
#: Synthesis jobs' audio.
RENDERS: Final = "voice-renders"
#: Voices' previews.
PREVIEWS: Final = "voice-previews"
#: Voices' manifests (`backend.clone.manifest`).
METADATA: Final = "voice-metadata"


def sample_upload(owner_id: uuid.UUID, sample_id: uuid.UUID) -> str:
    """A sample uploaded on its own (its processed copy goes beside it), in `SAMPLES`."""
    return f"{owner_id}/samples/{sample_id}/original"


def voice_sample(owner_id: uuid.UUID, voice_id: uuid.UUID) -> str:
    """The sample a voice was made from, in `SAMPLES`."""
    return f"{owner_id}/{voice_id}/original"


def processed(object_path: str) -> str:
    """The cleaned copy of the sample at `object_path`: beside it, under a fixed name."""
    return str(PurePosixPath(object_path).parent / "processed.wav")


def consent_recording(owner_id: uuid.UUID, consent_id: uuid.UUID) -> str:
    """A spoken consent's recording, in `SAMPLES` (under the samples' retention)."""
    return f"{owner_id}/consents/{consent_id}/recording"


def render(owner_id: uuid.UUID, job_id: uuid.UUID) -> str:
    """A synthesis job's audio, in `RENDERS`."""
    return f"{owner_id}/renders/{job_id}.wav"


def preview(owner_id: uuid.UUID, attempt_id: uuid.UUID) -> str:
    """A clone attempt's preview, in `PREVIEWS`."""
    return f"{owner_id}/{attempt_id}/preview.wav"


def manifest(owner_id: uuid.UUID, voice_id: uuid.UUID) -> str:
    """A voice's manifest, in `METADATA`."""
    return f"{owner_id}/{voice_id}.json"
