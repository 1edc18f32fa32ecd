-- name: list_voices
select id, name, language, status, tts_provider, provider_voice_id, provider_target_model,
       provider_voice_kind, provider_region, provider_request_id, provider_metadata, created_at, updated_at
  from public.voices
 order by created_at desc, id
 limit %(limit)s;

-- name: get_voice
select id, name, language, status, tts_provider, provider_voice_id, provider_target_model,
       provider_voice_kind, provider_region, provider_request_id, provider_metadata, created_at, updated_at
  from public.voices
 where id = %(id)s;

-- name: soft_delete_voice
update public.voices set deleted_at = now()
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
returning id;
