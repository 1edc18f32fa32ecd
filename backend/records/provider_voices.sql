-- name: referenced_voice_ids
-- Which of these provider voice ids some attempt or voice row (deleted or not) records.
select provider_voice_id from public.voice_clone_attempts
 where provider = %(provider)s and provider_voice_id = any(%(ids)s::text[])
union
select provider_voice_id from public.voices
 where tts_provider = %(provider)s and provider_voice_id = any(%(ids)s::text[]);

-- name: attempts_by_key_prefix
-- Attempts whose enrolment key hashes to one of these prefixes (the adapters tag provider voices
-- with sha256(key) in hex, or a prefix of it); the caller checks the full tag.
select id, status, is_active, reflection_id, enrolment_key, provider_voice_id, version,
       (status in ('processing', 'verifying') and lease_expires_at > now()) as in_flight
  from public.voice_clone_attempts
 where provider = %(provider)s
   and enrolment_key <> ''
   and left(encode(sha256(convert_to(enrolment_key, 'UTF8')), 'hex'), 14) = any(%(prefixes)s::text[]);

-- name: active_attempt_refs
select id, reflection_id, voice_id, status, version, provider_voice_id, provider_target_model
  from public.voice_clone_attempts
 where provider = %(provider)s
   and is_active
   and provider_voice_id is not null
   and id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000')
 order by id
 limit %(limit)s;

-- name: live_voice_refs
select id, status, provider_voice_id, provider_target_model
  from public.voices
 where tts_provider = %(provider)s
   and deleted_at is null
   and provider_voice_id is not null
   and id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000')
 order by id
 limit %(limit)s;
