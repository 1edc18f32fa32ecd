"""Reflections: the reflection, its voice mirror, readiness, attempts, preview completion, retry, launch and its
voice from an upload or a provider voice (`service`: `ReflectionsService`), with the bodies and answers of the
latter (`voice`). The `/v1/reflections` routes are `backend.http.reflections`."""
