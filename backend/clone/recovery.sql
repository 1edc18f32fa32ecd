-- name: stale_attempts
-- Open attempts nobody will pick up, in id order after the cursor `after`:
--   lease_expired:          processing/verifying whose lease ran out and that either have no message
--                           left to redeliver them or ran out longer than `stale_after` ago;
--   queued_without_message: queued longer than `stale_after` (or past its scheduled retry by that
--                           much) with no VOICE_CLONE_PROCESS message in the queue.
-- The queue is read once per batch as a hash, never per attempt.
select a.id as attempt_id, a.reflection_id, a.status, a.version, a.retry_count, a.max_retries, a.lease_owner,
       a.lease_expires_at, a.updated_at, (m.attempt_id is not null) as has_message,
       case when a.status = 'queued' then 'queued_without_message' else 'lease_expired' end as reason
  from public.voice_clone_attempts a
  left join (select distinct q.message ->> 'attemptId' as attempt_id from pgmq.q_voice_clone_process q) m
    on m.attempt_id = a.id::text
 where a.status = any(%(open)s::text[])
   and a.id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000')
   and ((a.status = 'queued'
         and m.attempt_id is null
         and greatest(a.updated_at, coalesce(a.next_retry_at, a.updated_at)) < now() - %(stale_after)s::interval)
     or (a.status in ('processing', 'verifying')
         and coalesce(a.lease_expires_at, '-infinity') < now()
         and (m.attempt_id is null or coalesce(a.lease_expires_at, '-infinity') < now() - %(stale_after)s::interval)))
 order by a.id
 limit %(limit)s;

-- name: recover_attempt
select outcome, version, msg_id
  from voicegate.recover_attempt(%(attempt_id)s, %(version)s, %(actor)s, %(action)s, %(code)s, %(message)s,
                                 %(detail)s::jsonb);
