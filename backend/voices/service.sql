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

-- name: voice_row
select * from public.voices where id = %(voice_id)s;

-- name: visible_voice
-- Run as the caller: their own voices that are not deleted.
select id from public.voices where id = %(id)s and deleted_at is null;

-- name: lock_voice
select id, tts_provider, provider_voice_id, provider_target_model, language
  from public.voices
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
   for update;

-- name: voice_consent
select c.id as consent_id, c.consent_text_version as consent_version
  from public.voices v
  join public.voice_consents c on c.id = v.consent_id
 where v.id = %(voice_id)s;
