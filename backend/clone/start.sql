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

-- name: lock_draft
-- As the caller: RLS hides another's voice.
select id, owner_id, status, consent_id, language from public.voices where id = %(id)s for update;

-- name: name_voice
update public.voices
   set name = coalesce(%(name)s, name), language = coalesce(%(language)s, language)
 where id = %(id)s;

-- name: holder
-- The live voice that holds a provider voice, whoever owns it.
select id, owner_id from public.voices
 where tts_provider = %(provider)s and provider_voice_id = %(voice_id)s and deleted_at is null;
