-- name: lock_job
select id, voice_id, healed_at from public.synthesis_jobs where id = %(id)s and status = 'processing' for update;

-- name: follow_attempt
update public.synthesis_jobs
   set attempt_id = %(attempt_id)s
 where voice_id = %(voice_id)s and status = 'queued';

-- name: wait_for_reenrolment
update public.synthesis_jobs
   set status = 'queued', attempt_id = %(attempt_id)s, healed_at = now()
 where id = %(id)s and status = 'processing'
returning now() as db_now;

-- name: fail_job
update public.synthesis_jobs
   set status = 'failed', error_code = %(code)s, error_message = %(message)s, finished_at = now()
 where id = %(id)s and status in ('queued', 'processing')
returning id;
