-- name: lock_job
select id, voice_id, healed_at from public.synthesis_jobs
 where id = %(id)s and status = 'processing' and lease_owner = %(owner)s
   for update;

-- name: wait_for_reenrolment
update public.synthesis_jobs
   set status = 'queued', attempt_id = %(attempt_id)s, healed_at = now(), lease_owner = null, lease_expires_at = null
 where id = %(id)s and status = 'processing' and lease_owner = %(owner)s
returning now() as db_now;

-- name: fail_job
-- Fenced by the lease when a run fails its own job; unfenced (owner null) when the job fails from outside
-- any run (a dead letter, a voice that cannot speak).
update public.synthesis_jobs
   set status = 'failed', error_code = %(code)s, error_message = %(message)s, finished_at = now(),
       lease_owner = null, lease_expires_at = null
 where id = %(id)s and status in ('queued', 'processing')
   and (%(owner)s::text is null or lease_owner = %(owner)s)
returning id;
