"""Synthesis: jobs that speak text in a cloned voice (`service`), the one rule for whether a voice can
speak yet (`speaker`), the `voice_synthesis` worker step (`step`), a voice's history of jobs (`history`) and
the routes' use cases (`use_cases`: `SynthesisService`). The `/api/v1/clone` routes are
`backend.http.clone_jobs`."""
