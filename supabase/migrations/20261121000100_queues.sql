-- pgmq and the queues of DESIGN.md §4. On Supabase `create extension pgmq` enables the packaged
-- extension; on a server without it, `voicegate migrate` has already installed the same functions
-- from the SQL shipped in the pgmq PyPI package, so the schema exists and nothing is created here.

set lock_timeout = '4s';

do $$
begin
  if to_regnamespace('pgmq') is null then
    create extension if not exists pgmq;
  end if;
end
$$;

select pgmq.create('voice_clone_process');
select pgmq.create('voice_preview');
select pgmq.create('voice_synthesis');
select pgmq.create('voice_sample_process');
select pgmq.create('voice_dead_letter');

-- Consumers LISTEN on `pgmq.q_<queue>.INSERT`. pgmq gained notify-on-insert in 1.7 and its throttle
-- argument later; an older pgmq (the Supabase image's version varies) leaves the consumers polling.
-- The throttle merges a burst into one wake-up and the consumer drains with a batch read after each.
do $$
declare
  queue text;
begin
  foreach queue in array array['voice_clone_process', 'voice_preview', 'voice_synthesis', 'voice_sample_process']
  loop
    if to_regprocedure('pgmq.enable_notify_insert(text, integer)') is not null then
      perform pgmq.enable_notify_insert(queue, 10);
    elsif to_regprocedure('pgmq.enable_notify_insert(text)') is not null then
      perform pgmq.enable_notify_insert(queue);
    end if;
  end loop;
end
$$;

-- Only the service works the queues; users reach them through the tables' triggers.
grant usage on schema pgmq to service_role;
grant all on all tables in schema pgmq to service_role;
grant usage, select, update on all sequences in schema pgmq to service_role;
