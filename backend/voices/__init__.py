"""Voices: a user's voices (`service`), the upload-then-finalize clone flow (`clone_flow`), and the
`/api/voices` and `/api/clone` routes (`routes`). The voice row itself is `backend.records.voices`."""
