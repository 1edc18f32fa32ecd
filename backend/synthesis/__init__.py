"""Synthesis: jobs that speak text in a cloned voice (`service`), the one rule for whether a voice can
speak yet (`speaker`), the `voice_synthesis` worker step (`step`) and a voice's history of jobs
(`history`). The `/api/v1/clone` routes are `backend.http.clone_jobs`."""
