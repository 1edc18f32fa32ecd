-- name: insert_voice
-- As the service, for `owner_id` (whose consent, if any, the caller's own read found theirs). No row when another
-- of their live voices has the name (voices_owner_name_uidx; one being made meanwhile is waited for).
insert into public.voices (id, owner_id, name, language, consent_id, tts_provider)
values (%(id)s, %(owner_id)s, %(name)s, %(language)s, %(consent_id)s, %(provider)s)
on conflict (owner_id, lower(btrim(name))) where deleted_at is null do nothing
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
