"""Voice samples: the one write path every upload takes (`upload`), the owner's service (`service`: `SamplesService`),
the `voice_sample_process` worker step that checks a sample and cleans the copy an enrolment sends (`step`), and
removal on request and by retention (`purge`).
The `/api/v1/voice-samples` routes and the multipart upload reader are `backend.http.samples` and
`backend.http.sample_upload`."""
