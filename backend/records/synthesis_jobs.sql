-- name: job_row
select * from public.synthesis_jobs where id = %(id)s;

-- name: follow_attempt
update public.synthesis_jobs
   set attempt_id = %(attempt_id)s
 where voice_id = %(voice_id)s and status = 'queued';
