-- name: provider_voice_owner
select id, owner_id from public.voices
 where tts_provider = %(provider)s and provider_voice_id = %(provider_voice_id)s and deleted_at is null;

-- name: enrolled_by_owner
select 1 as found from public.voice_clone_attempts
 where owner_id = %(owner_id)s and enrolment_key = %(enrolment_key)s;

-- name: insert_custom_voice
insert into public.voices (id, owner_id, name, language, tts_provider)
values (%(id)s, %(owner_id)s, %(name)s, %(language)s, %(provider)s)
returning id;

-- name: insert_custom_attempt
insert into public.voice_clone_attempts
  (owner_id, voice_id, reflection_id, provider, source, preview_required, provider_voice_id, provider_target_model)
values (%(owner_id)s, %(voice_id)s, %(reflection_id)s, %(provider)s, 'custom_voice_id', %(preview_required)s,
        %(provider_voice_id)s, %(target_model)s)
returning *;
