"""Reflections: the reflection, its voice mirror, readiness, attempts, preview completion, retry and
launch (`service`), its voice from an upload or a provider voice (`voice`), and the `/v1/reflections`
routes (`routes`)."""
