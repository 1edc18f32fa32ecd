-- name: get_voices
-- The stored voices of these ids: one statement for the lookups a worker's attempts make together.
select voice_id, name, language, enrolment_key, profile from voicegate.local_voices
 where voice_id = any(%(voice_ids)s::text[]);

-- name: put_voice
insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)
values (%(voice_id)s, %(name)s, %(language)s, %(enrolment_key)s, %(profile)s::jsonb)
on conflict (voice_id) do update
   set name = excluded.name, language = excluded.language, profile = excluded.profile;

-- name: delete_voice
delete from voicegate.local_voices where voice_id = %(voice_id)s returning voice_id;

-- name: all_voices
select voice_id, name, language, enrolment_key, profile from voicegate.local_voices order by created_at, voice_id;
