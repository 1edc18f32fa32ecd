"""Speech streamed as it is made, for conversation runtimes: a reflection's voice behind its launch gate
(`POST /v1/reflections/{id}/speech`) or a user's ready voice (`POST /api/v1/speech`), in the formats of
`backend.audio.formats`, each stream recorded for usage accounting (`service`); what the routes take (`types`)."""
