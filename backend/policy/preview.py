"""Where a voice's preview lives in Storage: the preview step (`backend.clone.preview_step`) stores it there, and a
voice's state (`backend.reflections.service`) signs a URL of it."""

from __future__ import annotations

import uuid

BUCKET = "voice-previews"


def preview_path(owner_id: uuid.UUID, attempt_id: uuid.UUID) -> str:
    """Where an attempt's preview lives: in its owner's folder, as the storage policies require."""
    return f"{owner_id}/{attempt_id}/preview.wav"
