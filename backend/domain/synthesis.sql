-- name: visible_sample
-- Run as the caller: RLS shows only their own samples.
select id from public.voice_samples where id = %(id)s;

-- name: lock_sample
-- As the service, after `visible_sample`: two clone requests from one sample make one voice.
select id, owner_id, voice_id, consent_id, status, failure_reason, provider, language
  from public.voice_samples
 where id = %(id)s and owner_id = %(owner_id)s
   for update;

-- name: visible_voice
-- Run as the caller: their own voices that are not deleted.
select id from public.voices where id = %(id)s and deleted_at is null;

-- name: lock_voice
select id, tts_provider, provider_voice_id
  from public.voices
 where id = %(id)s and owner_id = %(owner_id)s and deleted_at is null
   for update;

-- name: open_attempt
-- The voice's clone still under way, if any: a job made now waits for it.
select id, provider
  from public.voice_clone_attempts
 where voice_id = %(voice_id)s and status in ('queued', 'processing', 'verifying')
 order by created_at desc
 limit 1;

-- name: insert_sample_voice
insert into public.voices (id, owner_id, name, language, consent_id)
values (%(id)s, %(owner_id)s, %(name)s, %(language)s, %(consent_id)s)
returning id;

-- name: link_sample_voice
update public.voice_samples set voice_id = %(voice_id)s where id = %(sample_id)s;

-- name: insert_sample_attempt
-- No reflection, so no launch gate and no preview to listen to.
insert into public.voice_clone_attempts
  (owner_id, voice_id, sample_id, provider, source, preview_required, preview_status)
values (%(owner_id)s, %(voice_id)s, %(sample_id)s, %(provider)s, 'sample_upload', false, 'not_required')
returning id;

-- name: insert_job
insert into public.synthesis_jobs (owner_id, voice_id, sample_id, attempt_id, input_text)
values (%(owner_id)s, %(voice_id)s, %(sample_id)s, %(attempt_id)s, %(text)s)
returning id, status, created_at;

-- name: job
-- Run as the caller: RLS shows only their own jobs.
select id, status, voice_id, sample_id, attempt_id, output_bucket_id, output_object_path, duration_ms,
       error_code, error_message, created_at, finished_at
  from public.synthesis_jobs
 where id = %(id)s;
