"""Synthesis: jobs that speak text in a cloned voice (`service`), the one rule for whether a voice can
speak yet (`speaker`), the `voice_synthesis` worker step (`worker`) and the `/api/v1/clone` routes
(`routes`)."""
