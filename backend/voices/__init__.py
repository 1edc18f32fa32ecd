"""Voices: a user's voices and the voice rows other areas read (`service`), the
upload-then-finalize clone flow (`clone_flow`), and the `/api/voices` and `/api/clone` routes (`routes`)."""
