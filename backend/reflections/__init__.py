"""Reflections: the reflection, its voice mirror, readiness, attempts, preview completion, retry, launch and its
voice from an upload or a provider voice (`service`: `ReflectionsService`), with what the routes take and answer
(`types`). The `/v1/reflections` routes are `backend.http.routes.reflections`."""
