-- The legacy outbox keeps one row per clone request a legacy producer wrote, settled (accepted or skipped) by its
-- insert trigger at once; nothing in voicegate reads it again, so its rows go with the attempts' history
-- (VOICEGATE_ATTEMPT_HISTORY_RETENTION_DAYS): the maintenance sweep removes them a batch at a time, oldest first.

set lock_timeout = '4s';

-- Up to `p_limit` outbox rows written longer than `p_keep` ago, oldest first (ids rise with the time written: the
-- primary key finds them); how many went. As the table's owner: the service may only insert and read them.
create function voicegate.prune_legacy_outbox(p_keep interval, p_limit integer) returns integer
language sql
security definer
set search_path = ''
as $$
  with gone as (
    delete from public.voice_clone_outbox b
     where b.id = any (array(
       select o.id from public.voice_clone_outbox o
        where o.created_at < now() - p_keep
        order by o.id
        limit p_limit
          for update skip locked))
    returning 1)
  select count(*)::integer from gone;
$$;
revoke all on function voicegate.prune_legacy_outbox(interval, integer) from public;
grant execute on function voicegate.prune_legacy_outbox(interval, integer) to service_role;
