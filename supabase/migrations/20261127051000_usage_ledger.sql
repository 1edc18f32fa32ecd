-- What each user spends at the providers (docs/limits.md, "Spend"). Nothing bounded it: one user's script could
-- queue jobs and streams without end, and the characters a provider bills for were written nowhere but the
-- streams' own rows.
--
-- `usage_events` is the ledger: one row per provider call that sends text (a job's piece, a stream's sentence,
-- a preview, a likeness probe) and per enrolment, written as the service before the call is made (its
-- characters reserved), its audio seconds filled in by the transaction that records what the call returned.
-- A row is keyed by the work and the call within it, so a re-delivered message that does not call the provider
-- again adds nothing, while a run that speaks again (a retry, a worker that died) is a new call and a new row.
--
-- `user_usage` is the counter the quota is held on: one row per user, their characters in the current fixed
-- window, updated under its row lock in the reserving transaction, so every process meets the same count.

set lock_timeout = '4s';

create table voicegate.usage_events (
  id bigint generated always as identity primary key,
  owner_id uuid not null references auth.users (id) on delete cascade,
  provider text not null,
  model text,
  kind text not null check (kind in ('job', 'stream', 'preview', 'probe', 'enrolment')),
  -- The job, stream or clone attempt the call was made for.
  work_id uuid not null,
  -- Which call of the work: a run and a piece, a sentence; a retried delivery that does not call again
  -- names the same one.
  call_key text not null,
  characters integer not null check (characters >= 0),
  -- Null until the call's result is recorded (or forever, for a call whose worker died with it).
  audio_seconds double precision check (audio_seconds >= 0),
  at timestamptz not null default now(),
  constraint usage_events_call_key unique (kind, work_id, call_key)
);

create index usage_events_owner_at_idx on voicegate.usage_events (owner_id, at);
create index usage_events_at_idx on voicegate.usage_events (at);

create table voicegate.user_usage (
  owner_id uuid primary key references auth.users (id) on delete cascade,
  -- The fixed window `characters` counts in: a multiple of the window's length since the epoch, so its end
  -- (when the quota is back) is the same for every process.
  window_start timestamptz not null,
  characters bigint not null check (characters >= 0)
);

-- The service's alone: a user who could write them could lift their own quota or erase what they spent.
alter table voicegate.usage_events enable row level security;
alter table voicegate.user_usage enable row level security;
revoke all on voicegate.usage_events, voicegate.user_usage from public, anon, authenticated;
grant select, insert, update on voicegate.usage_events to service_role;
grant select, insert, update on voicegate.user_usage to service_role;

-- A user's counter row, locked until the caller's transaction ends and rolled to the window `now()` is in;
-- made at zero when the user has none.
create function voicegate.lock_usage(p_owner_id uuid, p_window_seconds double precision)
  returns table (used bigint, window_start timestamptz)
  language plpgsql
  set search_path = ''
as $$
declare
  current_start constant timestamptz :=
    to_timestamp(floor(extract(epoch from now()) / p_window_seconds) * p_window_seconds);
begin
  return query
  insert into voicegate.user_usage as u (owner_id, window_start, characters)
  values (p_owner_id, current_start, 0)
  on conflict (owner_id) do update
     set characters = case when u.window_start = excluded.window_start then u.characters else 0 end,
         window_start = excluded.window_start
  returning u.characters, u.window_start;
end
$$;

-- Reserve `p_characters` of `p_owner_id`'s quota (`p_limit` per window) for one provider call and write its
-- ledger row, both under the counter's row lock, held until the caller's transaction ends. `reserved` is false,
-- and nothing written, when the call would pass the quota; true, and nothing added, when this call was
-- reserved before. Crossing 80 % or 100 % of the quota emits `usage.threshold` in this transaction: once per
-- window and threshold, since the counter starts each window at zero. A definer, to emit the event.
create function voicegate.reserve_usage(
  p_owner_id uuid, p_provider text, p_model text, p_kind text, p_work_id uuid, p_call_key text,
  p_characters integer, p_limit bigint, p_window_seconds double precision)
  returns table (reserved boolean, used bigint, window_start timestamptz)
  language plpgsql
  security definer
  set search_path = ''
as $$
declare
  before bigint;
  started timestamptz;
  after bigint;
  percent integer;
begin
  select l.used, l.window_start into before, started from voicegate.lock_usage(p_owner_id, p_window_seconds) l;
  if exists (select from voicegate.usage_events e
              where e.kind = p_kind and e.work_id = p_work_id and e.call_key = p_call_key) then
    return query select true, before, started;
    return;
  end if;
  after := before + p_characters;
  if after > p_limit then
    return query select false, before, started;
    return;
  end if;
  insert into voicegate.usage_events (owner_id, provider, model, kind, work_id, call_key, characters)
  values (p_owner_id, p_provider, p_model, p_kind, p_work_id, p_call_key, p_characters);
  update voicegate.user_usage set characters = after where owner_id = p_owner_id;
  foreach percent in array array[80, 100] loop
    if before * 100 < p_limit * percent and after * 100 >= p_limit * percent then
      perform voicegate.emit_webhook('usage.threshold', p_owner_id, jsonb_build_object(
        'percent', percent, 'characters', after, 'limit', p_limit,
        'windowStart', to_char(started at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'resetsAt', to_char((started + make_interval(secs => p_window_seconds)) at time zone 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
    end if;
  end loop;
  return query select true, after, started;
end
$$;

-- The lock that orders one user's job creates, so the jobs they have queued are counted with none committing
-- meanwhile, in any process: a transaction-level advisory lock on the user, apart from their counter's row,
-- which the workers' reservations take (a burst of creates does not hold a worker's next piece back). Two
-- users whose ids hash alike only wait for each other's create, a few milliseconds.
create function voicegate.lock_user_jobs(p_owner_id uuid)
  returns void
  language sql
  set search_path = ''
  set lock_timeout = '800ms'
as $$
  -- The first key is this lock's own class (any constant no other advisory lock of voicegate's uses).
  select pg_advisory_xact_lock(1970496878, hashtext(p_owner_id::text));
$$;

revoke all on function voicegate.lock_user_jobs(uuid) from public;
grant execute on function voicegate.lock_user_jobs(uuid) to service_role;

-- A user's burst of reservations queues on their counter row; past this, the call is refused as too many at
-- once rather than cut at the statement's deadline as if the database were down.
alter function voicegate.lock_usage(uuid, double precision) set lock_timeout = '800ms';
alter function voicegate.reserve_usage(uuid, text, text, text, uuid, text, integer, bigint, double precision)
  set lock_timeout = '800ms';

revoke all on function voicegate.lock_usage(uuid, double precision) from public;
grant execute on function voicegate.lock_usage(uuid, double precision) to service_role;
revoke all on function voicegate.reserve_usage(uuid, text, text, text, uuid, text, integer, bigint, double precision)
  from public;
grant execute on function voicegate.reserve_usage(uuid, text, text, text, uuid, text, integer, bigint, double precision)
  to service_role;

-- Endpoints may choose the new event (an endpoint made before keeps the events it chose).
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.webhook_endpoints drop constraint webhook_endpoints_events_check;
alter table public.webhook_endpoints add constraint webhook_endpoints_events_check check (
  cardinality(events) between 1 and 9
  and events <@ array['sample.ready', 'sample.failed', 'voice.ready', 'voice.failed', 'synthesis.succeeded',
                      'synthesis.failed', 'synthesis.canceled', 'reflection.launch_ready',
                      'usage.threshold']::text[]) not valid;
