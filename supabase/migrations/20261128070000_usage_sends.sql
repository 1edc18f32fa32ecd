set lock_timeout = '4s';

-- A call's text is charged send by send (docs/limits.md, "Spend"). A provider's HTTP client sends a request again
-- when it got no usable answer (a 429, a 5xx, an answer lost), and the provider counts every send: the ledger was
-- short by the resends of streams, previews and probes, and a job's resends were counted only after they were made,
-- past the quota. Now each send past a call's first is reserved before it is made, under the counter's lock and
-- against the quota (`reserve_resend`), as the first is (`reserve_usage`); `sends` is how many times the row's call
-- sent its text, and `characters` that text's length times as many. A send reserved and never made (the provider
-- was never reached, or the database lost the answer to the unit that reserved it) is given back
-- (`release_usage`): the row loses that send, and goes once it has none.

alter table voicegate.usage_events add column sends integer not null default 1;
-- Validated by 20261128070001_usage_sends_validate.sql, in a transaction of its own.
alter table voicegate.usage_events add constraint usage_events_sends check (sends >= 1) not valid;

-- What crossing 80 % or 100 % of the quota emits (`usage.threshold`), once per window and threshold since the
-- counter starts each window at zero: for a reservation that took the counter from `p_before` to `p_after`.
create function voicegate.emit_usage_thresholds(
  p_owner_id uuid, p_before bigint, p_after bigint, p_limit bigint, p_started timestamptz,
  p_window_seconds double precision)
  returns void
  language plpgsql
  set search_path = ''
as $$
declare
  percent integer;
begin
  foreach percent in array array[80, 100] loop
    if p_before * 100 < p_limit * percent and p_after * 100 >= p_limit * percent then
      perform voicegate.emit_webhook('usage.threshold', p_owner_id, jsonb_build_object(
        'percent', percent, 'characters', p_after, 'limit', p_limit,
        'windowStart', to_char(p_started at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        'resetsAt', to_char((p_started + make_interval(secs => p_window_seconds)) at time zone 'UTC',
                            'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
    end if;
  end loop;
end
$$;

revoke all on function voicegate.emit_usage_thresholds(uuid, bigint, bigint, bigint, timestamptz, double precision)
  from public;

-- As before (20261127051000_usage_ledger.sql), its thresholds emitted by the function above.
create or replace function voicegate.reserve_usage(
  p_owner_id uuid, p_provider text, p_model text, p_kind text, p_work_id uuid, p_call_key text,
  p_characters integer, p_limit bigint, p_window_seconds double precision)
  returns table (reserved boolean, used bigint, window_start timestamptz)
  language plpgsql
  security definer
  set search_path = ''
  set lock_timeout = '800ms'
as $$
declare
  before bigint;
  started timestamptz;
  after bigint;
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
  perform voicegate.emit_usage_thresholds(p_owner_id, before, after, p_limit, started, p_window_seconds);
  return query select true, after, started;
end
$$;

-- One more send of a call reserved before (its row written by `reserve_usage`): `p_characters` more on its row and on
-- the owner's counter, under the counter's lock, held until the caller's transaction ends. `reserved` is false, and
-- nothing written, when the send would pass the quota or the call's row is gone (its owner erased meanwhile).
create function voicegate.reserve_resend(
  p_owner_id uuid, p_kind text, p_work_id uuid, p_call_key text, p_characters integer, p_limit bigint,
  p_window_seconds double precision)
  returns table (reserved boolean, used bigint, window_start timestamptz)
  language plpgsql
  security definer
  set search_path = ''
  set lock_timeout = '800ms'
as $$
declare
  before bigint;
  started timestamptz;
  after bigint;
begin
  select l.used, l.window_start into before, started from voicegate.lock_usage(p_owner_id, p_window_seconds) l;
  after := before + p_characters;
  if after > p_limit then
    return query select false, before, started;
    return;
  end if;
  update voicegate.usage_events e
     set characters = e.characters + p_characters, sends = e.sends + 1
   where e.kind = p_kind and e.work_id = p_work_id and e.call_key = p_call_key and e.owner_id = p_owner_id;
  if not found then
    return query select false, before, started;
    return;
  end if;
  update voicegate.user_usage set characters = after where owner_id = p_owner_id;
  perform voicegate.emit_usage_thresholds(p_owner_id, before, after, p_limit, started, p_window_seconds);
  return query select true, after, started;
end
$$;

-- Give back `p_sends` sends of a call (null: all of them) that were reserved and never made: its row loses their
-- characters (and goes once it has no send left), and so does the owner's counter if it still counts the window
-- the call was reserved in. The characters given back, 0 when the call has no row (never reserved, or given
-- back before: a second release gives nothing).
create function voicegate.release_usage(
  p_owner_id uuid, p_kind text, p_work_id uuid, p_call_key text, p_sends integer,
  p_window_seconds double precision)
  returns bigint
  language plpgsql
  security definer
  set search_path = ''
  set lock_timeout = '800ms'
as $$
declare
  call voicegate.usage_events;
  given integer;
  back bigint;
begin
  -- The counter's lock first, as every reservation takes it: a release and a reservation of one user never wait
  -- for each other in the other order. Not made when missing (lock_usage would insert it): a user erased meanwhile
  -- has no counter and no ledger left, and there is nothing to give back.
  perform from voicegate.user_usage u where u.owner_id = p_owner_id for update;
  select * into call from voicegate.usage_events e
   where e.kind = p_kind and e.work_id = p_work_id and e.call_key = p_call_key and e.owner_id = p_owner_id
     for update;
  if not found then
    return 0;
  end if;
  given := least(coalesce(p_sends, call.sends), call.sends);
  back := call.characters::bigint / call.sends * given;
  if given >= call.sends then
    delete from voicegate.usage_events where id = call.id;
  else
    update voicegate.usage_events set characters = characters - back, sends = sends - given where id = call.id;
  end if;
  update voicegate.user_usage u
     set characters = greatest(0, u.characters - back)
   where u.owner_id = p_owner_id
     and u.window_start = to_timestamp(floor(extract(epoch from call.at) / p_window_seconds) * p_window_seconds);
  return back;
end
$$;

revoke all on function voicegate.reserve_resend(uuid, text, uuid, text, integer, bigint, double precision) from public;
grant execute on function voicegate.reserve_resend(uuid, text, uuid, text, integer, bigint, double precision)
  to service_role;
revoke all on function voicegate.release_usage(uuid, text, uuid, text, integer, double precision) from public;
grant execute on function voicegate.release_usage(uuid, text, uuid, text, integer, double precision) to service_role;
