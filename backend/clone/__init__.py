"""The clone area: starting a clone (`start`), the `voice_clone_process` worker step that takes an attempt to a
synced provider voice (`step`), the voice's likeness to its samples (`likeness`), its manifest (`manifest`), a
voice moved to another provider (`portability`), the `voice_preview` step that speaks the new voice's preview
(`preview_step`), an attempt as its owner reads it (`service`: `AttemptsService`, with `types`), and stale
attempts requeued or failed (`recovery`). The attempt's row and moves are `backend.records.attempts`.

This module is the area's public face: another area imports what is listed here, and nothing else of it."""

from backend.clone.likeness import judge_render
from backend.clone.manifest import remove_manifest
from backend.clone.portability import CannotReenrol, heal
from backend.clone.start import (
    CustomVoiceId,
    FinalizedUpload,
    SampleSet,
    StoredSample,
    Upload,
    draft_voice,
    lock_draft,
    start_clone,
)
from backend.clone.types import LikenessSource, NoLikeness, StartedClone

__all__ = [
    "CannotReenrol",
    "CustomVoiceId",
    "FinalizedUpload",
    "LikenessSource",
    "NoLikeness",
    "SampleSet",
    "StartedClone",
    "StoredSample",
    "Upload",
    "draft_voice",
    "heal",
    "judge_render",
    "lock_draft",
    "remove_manifest",
    "start_clone",
]
