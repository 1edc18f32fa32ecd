"""Voices: a user's voices and the routes' use cases (`service`: `VoicesService`), the rules of a voice made from
a set of samples (`sample_sets`) and the bodies of the upload-then-finalize clone flow (`clone_flow`). The
`/api/voices` and `/api/clone` routes are `backend.http.voices`; the voice row itself is
`backend.records.voices`."""
