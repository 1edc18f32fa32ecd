-- name: load_job
-- The job with the voice it speaks with (and the consent its manifest names) and the clone attempt it
-- may wait for.
select j.id, j.owner_id, j.status, j.input_text, j.retry_count, j.attempt_id, j.voice_id,
       v.tts_provider, v.provider_voice_id, v.provider_target_model, v.provider_metadata, v.language,
       v.consent_id, c.consent_text_version as consent_version,
       a.status as attempt_status, a.provider as attempt_provider, a.provider_voice_id as attempt_voice_id,
       a.provider_target_model as attempt_target_model, a.provider_metadata as attempt_metadata,
       a.last_error_code as attempt_error_code, a.last_error_message as attempt_error_message,
       j.lease_owner, j.lease_expires_at, now() as db_now
  from public.synthesis_jobs j
  join public.voices v on v.id = j.voice_id
  left join public.voice_consents c on c.id = v.consent_id
  left join public.voice_clone_attempts a on a.id = j.attempt_id
 where j.id = %(id)s
   for update of j;

-- name: start_job
-- Claimed by this run: a queued job, or one whose last run's lease ran out (its worker died or stalled) or
-- whose last run was this worker's, `left`, and has ended.
update public.synthesis_jobs
   set status = 'processing', progress_done = 0, progress_total = %(total)s,
       lease_owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
 where id = %(id)s
   and (status = 'queued'
        or (status = 'processing' and (lease_expires_at <= now() or lease_owner = %(left)s::text)))
returning id;

-- name: extend_lease
-- Also a lease that ran out but was taken by nobody: its run is still the only one.
update public.synthesis_jobs
   set lease_expires_at = now() + make_interval(secs => %(lease_seconds)s)
 where id = %(id)s and status = 'processing' and lease_owner = %(owner)s
returning id;

-- name: release_lease
-- The run stopped without an end for the job (an outage): the next delivery may take it at once.
update public.synthesis_jobs
   set lease_expires_at = now()
 where id = %(id)s and status = 'processing' and lease_owner = %(owner)s;

-- name: record_progress
update public.synthesis_jobs
   set progress_done = %(done)s
 where id = %(id)s and status = 'processing' and lease_owner = %(owner)s
returning id;

-- name: retry_job
update public.synthesis_jobs
   set status = 'queued', retry_count = retry_count + 1, error_code = %(code)s, error_message = %(message)s,
       lease_owner = null, lease_expires_at = null
 where id = %(id)s and status = 'processing' and lease_owner = %(owner)s
returning retry_count, now() as db_now;

-- name: finish_job
update public.synthesis_jobs
   set status = 'succeeded', output_bucket_id = %(bucket)s, output_object_path = %(path)s,
       duration_ms = %(duration_ms)s, error_code = null, error_message = null, finished_at = now(),
       lease_owner = null, lease_expires_at = null
 where id = %(id)s and status = 'processing' and lease_owner = %(owner)s
returning id;

-- name: record_run_seconds
-- As the service, in the transaction that finishes the job: the render's seconds over this run's calls.
update voicegate.usage_events e
   set audio_seconds = %(audio_seconds)s * e.characters / nullif(t.total, 0)
  from (select sum(characters)::float8 as total
          from voicegate.usage_events
         where kind = 'job' and work_id = %(id)s and starts_with(call_key, %(run)s)) t
 where e.kind = 'job' and e.work_id = %(id)s and starts_with(e.call_key, %(run)s);

-- name: read_in_turn
-- pgmq's read of the synthesis queue, taking its messages in turn by their jobs' owners (`backend.queues.Turns`):
-- each owner's visible messages ranked oldest first after the `held` ones of theirs this consumer has in hand,
-- the lowest ranks first and none past the owner's `share` (or their own of `caps`). The owner is the job's;
-- a message naming no job (or none that exists) is nobody's ('' here). The time a message became visible is
-- checked again where it is locked, so that a message another consumer read meanwhile is skipped.
with visible as (
  select q.msg_id, coalesce(j.owner_id::text, '') as owner
    from pgmq.q_voice_synthesis q
    left join public.synthesis_jobs j
      on j.id = case when q.message ->> 'jobId' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                     then (q.message ->> 'jobId')::uuid end
   where q.vt <= clock_timestamp()
),
turns as (
  select msg_id, owner,
         coalesce((%(held)s::jsonb ->> owner)::int, 0) + row_number() over (partition by owner order by msg_id) as turn
    from visible
),
chosen as (
  select msg_id, owner, turn
    from turns
   where turn <= coalesce((%(caps)s::jsonb ->> owner)::int, %(share)s)
   order by turn, msg_id
   limit %(qty)s
),
locked as (
  select q.msg_id
    from pgmq.q_voice_synthesis q
   where q.msg_id in (select msg_id from chosen) and q.vt <= clock_timestamp()
     for update skip locked
),
taken as (
  update pgmq.q_voice_synthesis q
     set last_read_at = clock_timestamp(),
         vt = clock_timestamp() + make_interval(secs => %(vt)s),
         read_ct = q.read_ct + 1
    from chosen c
   where q.msg_id = c.msg_id and q.msg_id in (select msg_id from locked)
  returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, nullif(c.owner, '') as owner, c.turn, c.msg_id as n
)
select msg_id, read_ct, enqueued_at, vt, message, owner from taken order by turn, n;
