-- name: get_voices
-- For each of a JSON array's items ({n, voice_id}; `Database.grouped`), the stored voice, by `n` (none for a voice
-- not stored).
select i.n, v.voice_id, v.name, v.language, v.enrolment_key, v.profile
  from jsonb_to_recordset(%(items)s::jsonb) as i(n int, voice_id text)
  join voicegate.local_voices v on v.voice_id = i.voice_id;

-- name: put_voice
insert into voicegate.local_voices (voice_id, name, language, enrolment_key, profile)
values (%(voice_id)s, %(name)s, %(language)s, %(enrolment_key)s, %(profile)s::jsonb)
on conflict (voice_id) do update
   set name = excluded.name, language = excluded.language, profile = excluded.profile;

-- name: delete_voice
delete from voicegate.local_voices where voice_id = %(voice_id)s returning voice_id;

-- name: all_voices
select voice_id, name, language, enrolment_key, profile from voicegate.local_voices order by created_at, voice_id;
