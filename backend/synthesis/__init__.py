"""Synthesis: the routes' service (`service`: `SynthesisService`) and the types of a job (`types`), the one rule for
whether a voice can speak yet (`speaker`), the `voice_synthesis` worker step (`step`), a job healed or failed
(`heal`) and a voice's history of jobs (`history`). The `/api/v1/clone` routes are `backend.http.synthesis`."""
