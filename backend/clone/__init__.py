"""The clone area: the `voice_clone_process` worker step that takes an attempt to a synced provider voice (`step`),
the `voice_preview` step that speaks the new voice's preview (`preview_step`), an attempt as its owner reads it
(`service`: `AttemptsService`), and stale attempts requeued or failed (`recovery`). The attempt's row and moves are
`backend.records.attempts`; starting a clone, its likeness and its manifest are shared rules (`backend.rules`)."""
