-- Named queries of the retention sweep (retention.py): each removes up to %(limit)s rows past their bound,
-- %(keep)s (an interval), oldest first, and answers how many went. A batch takes the ids first and deletes them by
-- id, in one short statement; rows a request may hold locked are passed by (`skip locked`), never waited for.
-- As the service throughout.

-- name: prune_queue_archive
select voicegate.prune_queue_archive(%(queue)s, %(keep)s, %(limit)s) as removed;

-- name: prune_audit_events
-- Legal-hold events stay (voicegate.audit_held).
select voicegate.prune_audit_events(%(keep)s, %(limit)s) as removed;

-- name: prune_usage_events
select voicegate.prune_usage_events(%(keep)s, %(limit)s) as removed;

-- name: prune_queue_message_errors
-- A failed delivery's error, kept as long as the archives keep the messages.
with gone as (
  delete from voicegate.queue_message_errors e
   where e.ctid = any (array(
     select o.ctid from voicegate.queue_message_errors o
      where o.at < now() - %(keep)s
      order by o.at
      limit %(limit)s
        for update skip locked))
  returning 1)
select count(*)::integer as removed from gone;

-- name: prune_attempt_events
-- The history of attempts that finished before the bound: their events from before it. The attempt row stays, with
-- its last state, its provider voice and its error (erasure and reconciliation read them).
with gone as (
  delete from public.voice_clone_attempt_events e
   where e.id = any (array(
     select o.id
       from public.voice_clone_attempt_events o
       join public.voice_clone_attempts a on a.id = o.attempt_id
      where o.at < now() - %(keep)s and a.finished_at < now() - %(keep)s
      order by o.id
      limit %(limit)s))
  returning 1)
select count(*)::integer as removed from gone;

-- name: prune_legacy_outbox
-- Rows legacy producers wrote, each settled by its insert trigger at once and read by nobody since.
select voicegate.prune_legacy_outbox(%(keep)s, %(limit)s) as removed;

-- name: prune_speech_streams
-- Finished streams only: one still playing is updated by its request.
with gone as (
  delete from public.speech_streams s
   where s.id = any (array(
     select o.id from public.speech_streams o
      where o.finished_at < now() - %(keep)s
      order by o.finished_at
      limit %(limit)s
        for update skip locked))
  returning 1)
select count(*)::integer as removed from gone;

-- name: prune_reflection_sessions
with gone as (
  delete from public.reflection_sessions s
   where s.id = any (array(
     select o.id from public.reflection_sessions o
      where o.created_at < now() - %(keep)s
      order by o.created_at
      limit %(limit)s
        for update skip locked))
  returning 1)
select count(*)::integer as removed from gone;

-- name: prune_synthesis_jobs
-- Finished jobs; a render no row claims any more is the orphan sweep's (VOICEGATE_ORPHAN_GRACE).
with gone as (
  delete from public.synthesis_jobs j
   where j.id = any (array(
     select o.id from public.synthesis_jobs o
      where o.finished_at < now() - %(keep)s and o.status in ('succeeded', 'failed', 'canceled')
      order by o.finished_at
      limit %(limit)s
        for update skip locked))
  returning 1)
select count(*)::integer as removed from gone;

-- name: prune_idempotency_keys
-- Keys past their own expiry (a user's next request purges theirs; a user who never comes back left theirs).
with gone as (
  delete from voicegate.idempotency_keys k
   where k.ctid = any (array(
     select o.ctid from voicegate.idempotency_keys o
      where o.expires_at <= now()
      order by o.expires_at
      limit %(limit)s
        for update skip locked))
  returning 1)
select count(*)::integer as removed from gone;

-- name: table_sizes
-- Every table that grows with use: its rows (the planner's estimate, null before the first analyze), its bytes
-- with its indexes and TOAST, its dead rows and its oldest row's time (each read by its index, or a queue's few).
select t.name, case when c.reltuples >= 0 then c.reltuples::bigint end as estimated_rows,
       pg_total_relation_size(c.oid) as total_bytes, coalesce(s.n_dead_tup, 0) as dead_rows, t.oldest
  from (values
    ('pgmq.a_voice_clone_process', (select min(archived_at) from pgmq.a_voice_clone_process)),
    ('pgmq.a_voice_sample_process', (select min(archived_at) from pgmq.a_voice_sample_process)),
    ('pgmq.a_voice_preview', (select min(archived_at) from pgmq.a_voice_preview)),
    ('pgmq.a_voice_synthesis', (select min(archived_at) from pgmq.a_voice_synthesis)),
    ('pgmq.a_webhook_delivery', (select min(archived_at) from pgmq.a_webhook_delivery)),
    ('pgmq.a_voice_dead_letter', (select min(archived_at) from pgmq.a_voice_dead_letter)),
    ('pgmq.a_user_erasure', (select min(archived_at) from pgmq.a_user_erasure)),
    ('pgmq.q_voice_clone_process', (select min(enqueued_at) from pgmq.q_voice_clone_process)),
    ('pgmq.q_voice_sample_process', (select min(enqueued_at) from pgmq.q_voice_sample_process)),
    ('pgmq.q_voice_preview', (select min(enqueued_at) from pgmq.q_voice_preview)),
    ('pgmq.q_voice_synthesis', (select min(enqueued_at) from pgmq.q_voice_synthesis)),
    ('pgmq.q_webhook_delivery', (select min(enqueued_at) from pgmq.q_webhook_delivery)),
    ('pgmq.q_voice_dead_letter', (select min(enqueued_at) from pgmq.q_voice_dead_letter)),
    ('pgmq.q_user_erasure', (select min(enqueued_at) from pgmq.q_user_erasure)),
    ('voicegate.audit_events', (select min(at) from voicegate.audit_events)),
    ('public.voice_clone_attempt_events', (select at from public.voice_clone_attempt_events order by id limit 1)),
    ('public.voice_clone_attempts', (select min(created_at) from public.voice_clone_attempts)),
    ('public.voice_clone_attempt_samples', null::timestamptz),
    ('public.voice_clone_outbox', (select created_at from public.voice_clone_outbox order by id limit 1)),
    ('public.speech_streams', (select min(finished_at) from public.speech_streams)),
    ('public.reflection_sessions', (select min(created_at) from public.reflection_sessions)),
    ('public.synthesis_jobs', (select min(finished_at) from public.synthesis_jobs)),
    ('voicegate.usage_events', (select at from voicegate.usage_events order by id limit 1)),
    ('voicegate.user_usage', (select min(window_start) from voicegate.user_usage)),
    ('voicegate.idempotency_keys', (select min(expires_at) from voicegate.idempotency_keys)),
    ('voicegate.queue_message_errors', (select min(at) from voicegate.queue_message_errors)),
    ('public.voice_samples', (select min(expires_at) from public.voice_samples)),
    ('public.voice_consents', (select min(created_at) from public.voice_consents)),
    ('public.voices', (select min(created_at) from public.voices)),
    ('public.reflections', (select min(created_at) from public.reflections)),
    ('voicegate.erasures', (select min(requested_at) from voicegate.erasures))
  ) as t (name, oldest)
  join pg_catalog.pg_class c on c.oid = t.name::regclass
  left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid;
