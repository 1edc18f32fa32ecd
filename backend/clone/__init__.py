"""Clones, and the clone attempt's whole life (its row and moves are `backend.records.attempts`): starting one,
from whichever source a route or an operator names (`start`); the `voice_clone_process` worker step that takes
an attempt to a synced provider voice (`step`), with the samples it sends (`sample_set`) and the likeness it
judges (`likeness`); the `voice_preview` worker step that speaks the new voice's preview (`preview_step`); an
attempt as its owner reads it (`read`); stale attempts requeued or failed (`recovery`); the voice's manifest
the step writes (`manifest`); giving a voice a provider voice again (`portability`), which a synthesis job that
lost its voice asks for (`backend.synthesis.heal`)."""
