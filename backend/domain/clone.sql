-- name: insert_consent
insert into public.voice_consents (subject_name, consent_text_version, user_agent, ip_hash)
values (%(subject_name)s, %(consent_text_version)s, %(user_agent)s, %(ip_hash)s)
returning id;

-- name: insert_voice
insert into public.voices (id, name, language, consent_id)
values (%(id)s, %(name)s, %(language)s, %(consent_id)s)
returning id;

-- name: voice_for_finalize
select id, owner_id, status, consent_id from public.voices where id = %(id)s for update;

-- name: reflection_visible
select id from public.reflections where id = %(id)s;

-- name: insert_sample
-- `status`: 'ready' when the clone attempt checks the audio itself, 'pending' for the sample queue.
insert into public.voice_samples (id, owner_id, voice_id, consent_id, bucket_id, object_path, declared_type,
                                  sniffed_type, size_bytes, transcript, language, provider, status, expires_at)
values (%(id)s, %(owner_id)s, %(voice_id)s, %(consent_id)s, %(bucket_id)s, %(object_path)s, %(declared_type)s,
        %(sniffed_type)s, %(size_bytes)s, %(transcript)s, %(language)s, %(provider)s, %(status)s,
        now() + make_interval(secs => %(retention_days)s::double precision * 86400))
returning id, status, expires_at;

-- name: name_voice
update public.voices
   set name = coalesce(%(name)s, name), language = coalesce(%(language)s, language)
 where id = %(id)s;

-- name: insert_attempt
insert into public.voice_clone_attempts (owner_id, voice_id, reflection_id, sample_id, provider, source)
values (%(owner_id)s, %(voice_id)s, %(reflection_id)s, %(sample_id)s, %(provider)s, 'sample_upload')
returning id, status;
