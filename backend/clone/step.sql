-- name: voice
-- What the clone step reads of its voice: the name and language to enrol it with, and the provider voice
-- the runtime speaks with (synced once it is the attempt's).
select name, language, tts_provider, provider_voice_id from public.voices where id = %(voice_id)s;
