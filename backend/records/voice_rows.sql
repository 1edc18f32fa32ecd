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

-- name: count_cloned
select count(*) as n
  from public.voices v
 where v.deleted_at is null
   and v.tts_provider is not null
   and (%(source)s::text is null or v.tts_provider = %(source)s)
   and (%(ids)s::uuid[] is null or v.id = any(%(ids)s::uuid[]));

-- name: cloned
-- Live voices that have been cloned, in id order after the cursor.
select v.id, v.owner_id, v.status, v.tts_provider, v.provider_voice_id, v.provider_target_model
  from public.voices v
 where v.deleted_at is null
   and v.tts_provider is not null
   and (%(source)s::text is null or v.tts_provider = %(source)s)
   and (%(ids)s::uuid[] is null or v.id = any(%(ids)s::uuid[]))
   and v.id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000')
 order by v.id
 limit %(limit)s;

-- name: unused_name
-- Of as many names as the owner has live voices, plus one, one is free: the first such is the answer.
select candidate.name
  from generate_series(1, (select count(*) + 1 from public.voices
                            where owner_id = %(owner_id)s and deleted_at is null)) as n
 cross join lateral (
   select case when n = 1 then %(name)s
               else rtrim(left(%(name)s, 200 - length(' (' || n || ')'))) || ' (' || n || ')' end as name
 ) candidate
 where not exists (
   select 1 from public.voices v
    where v.owner_id = %(owner_id)s and v.deleted_at is null and lower(btrim(v.name)) = lower(btrim(candidate.name))
 )
 order by n
 limit 1;

-- name: visible_voice_row
-- Run as the caller: their own voice, not deleted, whole.
select * from public.voices where id = %(id)s and deleted_at is null;

-- name: visible_voice
-- Run as the caller: their own voices that are not deleted.
select id from public.voices where id = %(id)s and deleted_at is null;
