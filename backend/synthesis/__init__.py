"""Synthesis: the routes' service (`service`: `SynthesisService`: jobs, a voice's clips and its preview), what they
take and answer (`types`), the `voice_synthesis` worker step (`step`) and a job healed or failed (`heal`). Whether a
voice can speak yet is `backend.policy.speaker`. The `/api/v1/clone` routes are `backend.http.routes.synthesis`."""
