"""The samples area: the owner's service (`service`: `SamplesService`) and the `voice_sample_process` worker step
(`step`). Storing, checking and removing a sample are shared rules (`backend.rules`: `sample_upload`,
`sample_check`, `sample_purge`); the `/api/v1/voice-samples` routes and the multipart upload reader are
`backend.http.samples` and `backend.http.sample_upload`."""
