-- name: insert_job
insert into public.synthesis_jobs (owner_id, voice_id, sample_id, attempt_id, input_text)
values (%(owner_id)s, %(voice_id)s, %(sample_id)s, %(attempt_id)s, %(text)s)
returning *;

-- name: voice_jobs
-- Run as the caller: RLS shows only their own jobs. Newest first, a page after the cursor (created_at, id).
select id as job_id, status, input_text as text, duration_ms, error_code, error_message, created_at, finished_at
  from public.synthesis_jobs
 where voice_id = %(voice_id)s
   and (%(before_at)s::timestamptz is null or (created_at, id) < (%(before_at)s::timestamptz, %(before_id)s::uuid))
 order by created_at desc, id desc
 limit %(limit)s;

-- name: cancel_job
-- As the service after the caller's own check; the owner is in the statement all the same. The lease goes
-- with the status, so the run speaking the job (if any) is fenced out of every write it has left.
update public.synthesis_jobs
   set status = 'canceled', finished_at = now(), lease_owner = null, lease_expires_at = null
 where id = %(id)s and owner_id = %(owner_id)s and status in ('queued', 'processing')
returning id;

-- name: delete_job
-- As the service, as `cancel_job`. A job still queued or running is not deleted (cancel it first): its run
-- could otherwise store a render after the row is gone.
delete from public.synthesis_jobs
 where id = %(id)s and owner_id = %(owner_id)s and status in ('succeeded', 'failed', 'canceled')
returning id, output_bucket_id, output_object_path;

-- name: preview_of_voice
-- Run as the caller (RLS on both tables). The preview its clone attempt made, else its newest clip.
select bucket, path, source
  from (select a.provider_metadata -> 'preview' ->> 'bucket' as bucket, a.provider_metadata -> 'preview' ->> 'path' as path,
               'preview' as source, 0 as rank, a.created_at
          from public.voice_clone_attempts a
         where a.voice_id = %(voice_id)s and a.preview_status in ('ready', 'completed')
           and a.provider_metadata -> 'preview' ->> 'path' is not null
        union all
        select j.output_bucket_id, j.output_object_path, 'clip', 1, j.created_at
          from public.synthesis_jobs j
         where j.voice_id = %(voice_id)s and j.status = 'succeeded' and j.output_object_path is not null) as heard
 order by rank, created_at desc
 limit 1;
