-- name: insert_job
insert into public.synthesis_jobs (owner_id, voice_id, sample_id, attempt_id, input_text)
values (%(owner_id)s, %(voice_id)s, %(sample_id)s, %(attempt_id)s, %(text)s)
returning id, status, created_at;

-- name: job
-- Run as the caller: RLS shows only their own jobs.
select id as job_id, status, voice_id, sample_id, attempt_id, output_bucket_id, output_object_path, duration_ms,
       error_code, error_message, progress_done, progress_total, created_at, finished_at
  from public.synthesis_jobs
 where id = %(id)s;
