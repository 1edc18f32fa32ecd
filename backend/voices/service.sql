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

-- name: insert_own_voice
-- As the caller: the owner comes from their token (the column default), RLS checks the consent.
insert into public.voices (id, name, language, consent_id)
values (%(id)s, %(name)s, %(language)s, %(consent_id)s)
returning id;

-- name: insert_voice
-- As the service, for `owner_id`.
insert into public.voices (id, owner_id, name, language, consent_id, tts_provider)
values (%(id)s, %(owner_id)s, %(name)s, %(language)s, %(consent_id)s, %(provider)s)
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

-- name: voice_for_finalize
select id, owner_id, status, consent_id, language from public.voices where id = %(id)s for update;

-- name: name_voice
update public.voices
   set name = coalesce(%(name)s, name), language = coalesce(%(language)s, language)
 where id = %(id)s;

-- name: provider_voice_owner
select id, owner_id from public.voices
 where tts_provider = %(provider)s and provider_voice_id = %(provider_voice_id)s and deleted_at is null;

-- name: voice_consent
select c.id as consent_id, c.consent_text_version as consent_version
  from public.voices v
  join public.voice_consents c on c.id = v.consent_id
 where v.id = %(voice_id)s;
