"""Voice samples: the one write path (`service`), the multipart upload reader (`upload`), the
`voice_sample_process` check step (`check`), removal on request and by retention (`purge`), and the
`/api/v1/voice-samples` routes (`routes`)."""
