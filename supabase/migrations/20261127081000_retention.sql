-- Every table that grows with use gets a bound (docs/operations.md, "Retention"). Until now the queue archives,
-- the audit trail, the attempts' events, the usage ledger, speech streams, launches and finished jobs kept every
-- row forever; the worker's maintenance sweep now removes what is past its VOICEGATE_*_RETENTION_DAYS, in small
-- batches of its own transactions (backend/db/retention.sql).
--
-- The sweep runs as the service, which may not delete from the audit trail or the usage ledger: each has a
-- function here that removes only what its bound allows, so no other statement of the service can.

set lock_timeout = '4s';

-- The audit events a legal hold keeps whatever their age: what shows consent was given, refused or its evidence
-- removed; that a user's erasure was asked for and done; that a provider voice or a sample's audio was deleted;
-- and that a sample or voice of another speaker was refused. The rest (requeues, orphans removed, dead letters
-- replayed, jobs deleted, ...) is operations' record, kept VOICEGATE_AUDIT_RETENTION_DAYS.
create function voicegate.audit_held(p_action text) returns boolean
language sql
immutable
set search_path = ''
as $$
  select p_action like 'consent.%'
      or p_action like 'user.%'
      or p_action in ('provider_voice.delete', 'sample.purge', 'sample.trim', 'voice.speaker_refused',
                      'sample.speaker_mismatch', 'sample.mixed_speakers');
$$;
revoke all on function voicegate.audit_held(text) from public;
grant execute on function voicegate.audit_held(text) to service_role;

-- Up to `p_limit` audit events older than `p_keep` and not held, oldest first; how many went.
create function voicegate.prune_audit_events(p_keep interval, p_limit integer) returns integer
language sql
security definer
set search_path = ''
as $$
  with gone as (
    delete from voicegate.audit_events e
     where e.id = any (array(
       select o.id from voicegate.audit_events o
        where o.at < now() - p_keep and not voicegate.audit_held(o.action)
        order by o.at
        limit p_limit))
    returning 1)
  select count(*)::integer from gone;
$$;
revoke all on function voicegate.prune_audit_events(interval, integer) from public;
grant execute on function voicegate.prune_audit_events(interval, integer) to service_role;

-- Up to `p_limit` usage ledger rows older than `p_keep`, oldest first; how many went. The quota counts in
-- `user_usage`, so the ledger is only what `voicegate ops usage` reports (the caller keeps it longer than a window).
create function voicegate.prune_usage_events(p_keep interval, p_limit integer) returns integer
language sql
security definer
set search_path = ''
as $$
  with gone as (
    delete from voicegate.usage_events e
     where e.id = any (array(
       select o.id from voicegate.usage_events o
        where o.at < now() - p_keep
        order by o.at
        limit p_limit))
    returning 1)
  select count(*)::integer from gone;
$$;
revoke all on function voicegate.prune_usage_events(interval, integer) from public;
grant execute on function voicegate.prune_usage_events(interval, integer) to service_role;

-- Up to `p_limit` messages archived in `p_queue`'s archive longer than `p_keep` ago, oldest first; how many went.
-- One function for every queue, those added later included (a table's name cannot be a parameter).
create function voicegate.prune_queue_archive(p_queue text, p_keep interval, p_limit integer) returns integer
language plpgsql
set search_path = ''
as $$
declare
  removed integer;
begin
  if not exists (select 1 from pgmq.meta m where m.queue_name = p_queue) then
    raise exception 'no queue %', p_queue using errcode = 'undefined_table';
  end if;
  execute format(
    'delete from pgmq.%1$I where msg_id = any (array(
       select msg_id from pgmq.%1$I where archived_at < now() - $1 order by archived_at limit $2))',
    'a_' || p_queue)
    using p_keep, p_limit;
  get diagnostics removed = row_count;
  return removed;
end
$$;
revoke all on function voicegate.prune_queue_archive(text, interval, integer) from public;
grant execute on function voicegate.prune_queue_archive(text, interval, integer) to service_role;

-- Autovacuum at 5 % dead rows instead of 20 %, unthrottled, on the tables every attempt, message or request
-- updates or deletes: with the defaults a busy queue table or the attempts table holds a fifth of dead rows
-- before a vacuum even starts, and a throttled vacuum of a large table runs for minutes while more pile up.
-- A queue table holds few live rows and churns through them, so its threshold is a row count.
alter table pgmq.q_voice_clone_process set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
alter table pgmq.q_voice_sample_process set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
alter table pgmq.q_voice_preview set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
alter table pgmq.q_voice_synthesis set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
alter table pgmq.q_webhook_delivery set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
alter table pgmq.q_voice_dead_letter set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
alter table pgmq.q_user_erasure set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
-- The archives only grow and are cut from their old end: vacuumed after the sweep's deletions as above, and
-- after inserts too (their pages frozen and marked all-visible while they are still cached).
alter table pgmq.a_voice_clone_process set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table pgmq.a_voice_sample_process set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table pgmq.a_voice_preview set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table pgmq.a_voice_synthesis set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table pgmq.a_webhook_delivery set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table pgmq.a_voice_dead_letter set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table pgmq.a_user_erasure set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table public.voice_clone_attempts set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05);
alter table public.voice_clone_attempt_events set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table public.voices set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table public.reflections set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table public.synthesis_jobs set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table public.speech_streams set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table public.voice_samples set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table voicegate.idempotency_keys set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table voicegate.user_usage set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0);
alter table voicegate.user_creates set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 200, autovacuum_vacuum_cost_delay = 0);
alter table voicegate.usage_events set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
alter table voicegate.audit_events set (autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
