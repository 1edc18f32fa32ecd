-- name: voice_row
select * from public.voices where id = %(voice_id)s;

-- name: lock_live
select *
  from public.voices
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
   for update;

-- name: voice_consent
select c.id as consent_id, c.consent_text_version as consent_version
  from public.voices v
  join public.voice_consents c on c.id = v.consent_id
 where v.id = %(voice_id)s;
