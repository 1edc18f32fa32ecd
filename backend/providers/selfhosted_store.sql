-- name: get_voice
select voice_id, enrolment_key, name, language, ref_text, audio, mime_type
  from voicegate.selfhosted_voices
 where voice_id = %(voice_id)s;

-- name: put_voice
-- The voice id derives from the key, so a second create for one key finds the first and keeps it.
insert into voicegate.selfhosted_voices (voice_id, enrolment_key, name, language, ref_text, audio, mime_type)
values (%(voice_id)s, %(enrolment_key)s, %(name)s, %(language)s, %(ref_text)s, %(audio)s, %(mime_type)s)
on conflict do nothing;

-- name: delete_voice
delete from voicegate.selfhosted_voices where voice_id = %(voice_id)s returning voice_id;

-- name: all_voices
select voice_id, enrolment_key, name, language
  from voicegate.selfhosted_voices
 order by created_at, voice_id;
