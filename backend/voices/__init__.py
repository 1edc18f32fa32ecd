"""Voices: a user's voices and the routes' use cases (`service`: `VoicesService`, the upload-then-finalize clone
flow among them), the rules of a voice made from a set of samples (`sample_sets`) and what the routes take and
answer (`types`). The `/api/voices` and `/api/clone` routes are `backend.http.routes.voices`; the voice row itself is
`backend.records.voice_rows`."""
