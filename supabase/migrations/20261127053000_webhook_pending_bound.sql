-- Deliveries held per endpoint are bounded. An endpoint that does not answer kept every event it was sent
-- queued for a day of retries, so a few dead endpoints could fill `webhook_delivery` for everyone. Now an
-- endpoint holds at most `endpoint_pending` deliveries in the queue (pending: waiting, in hand or backing off);
-- an event that would make one more moves that endpoint's oldest to the dead letters, with an audit event, in
-- the transaction that writes the event. The bound is a setting (VOICEGATE_WEBHOOK_PENDING) the workers write
-- here, as they say whether the project has an endpoint.

set lock_timeout = '4s';

-- A constant default and a check on a one-row table: no rewrite, and nothing to scan.
-- squawk-ignore adding-field-with-default, constraint-missing-not-valid -- the table holds one row
alter table voicegate.project_webhook
  add column endpoint_pending integer not null default 100 check (endpoint_pending between 1 and 100000);

-- Make room for one more delivery to `p_endpoint`: when it holds `p_bound` or more, its oldest go to the dead
-- letters and the queue's archive, with their kept errors and one audit event. A tenth of the bound goes at once
-- (one at a time below 20), so that a dead endpoint's events pay for a move, its audit event and its count of
-- held deliveries once in that many events rather than each time. Oldest by id: the queue's ids follow the
-- events' order (only a replay sends an old event anew, and it then counts as the newest). The caller holds the
-- endpoint's row lock, so the count holds every delivery another transaction committed and none can commit
-- meanwhile: the bound is exact however many processes write events. A delivery moved while a worker posts it
-- may still arrive; its replay then carries the same `webhook-id`, which receivers deduplicate on.
create function voicegate.make_room_for_webhook(p_endpoint uuid, p_owner uuid, p_bound integer) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  held integer;
  gone record;
  kept text;
  moved bigint[] := '{}';
begin
  select count(*) into held
    from pgmq.q_webhook_delivery
   where message ->> 'endpointId' = p_endpoint::text;
  if held < p_bound then
    return;
  end if;
  for gone in
    with oldest as (
      select q.msg_id
        from pgmq.q_webhook_delivery q
       where q.message ->> 'endpointId' = p_endpoint::text
       order by q.message ->> 'endpointId', q.msg_id
       limit held - p_bound + greatest(1, p_bound / 10)
    ), evicted as (
      delete from pgmq.q_webhook_delivery q using oldest o where q.msg_id = o.msg_id returning q.*
    ), archived as (
      -- The columns every pgmq since 1.0 has (the triggers write no headers).
      insert into pgmq.a_webhook_delivery (msg_id, read_ct, enqueued_at, vt, message)
      select msg_id, read_ct, enqueued_at, vt, message from evicted
      returning msg_id, read_ct, message
    )
    select * from archived order by msg_id
  loop
    delete from voicegate.queue_message_errors
     where queue_name = 'webhook_delivery' and msg_id = gone.msg_id
    returning error into kept;
    -- As queue_consumers/runtime.py writes a dead letter, so `voicegate ops replay-dead-letters` replays it.
    perform pgmq.send('voice_dead_letter', jsonb_build_object(
      'sourceQueue', 'webhook_delivery',
      'sourceMsgId', gone.msg_id,
      'readCount', gone.read_ct,
      'message', gone.message,
      'error', jsonb_build_object(
        'code', 'endpoint_backlog',
        'message', left(format('the endpoint held %s deliveries (VOICEGATE_WEBHOOK_PENDING) as a newer event came;'
                               ' last error: %s', p_bound, coalesce(kept, 'none yet')), 1000)),
      'deadAt', to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')));
    moved := moved || gone.msg_id;
  end loop;
  perform voicegate.record_audit('webhook_outbox', 'webhook.backlog_dead_lettered', 'webhook_endpoint',
                                 p_endpoint::text,
                                 jsonb_build_object('ownerId', p_owner, 'bound', p_bound, 'held', held,
                                                    'deadLettered', cardinality(moved), 'msgIds', to_jsonb(moved)));
end
$$;

revoke all on function voicegate.make_room_for_webhook(uuid, uuid, integer) from public;

-- As 20261125145000's, but each endpoint the event goes to is locked and has room made before its message is
-- written. The lock is held to the commit of the change that made the event, so changes of one owner's rows
-- made at once queue there for a moment; locked in id order, so that two events' endpoints are taken in one
-- order. An owner without an endpoint for the event pays nothing more.
create or replace function voicegate.emit_webhook(p_type text, p_owner uuid, p_data jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  cfg voicegate.project_webhook;
  project boolean;
  bound integer;
  event jsonb;
  endpoint uuid;
begin
  select * into cfg from voicegate.project_webhook;
  project := coalesce(cfg.configured, true);
  bound := coalesce(cfg.endpoint_pending, 100);
  if not project and not exists (select from public.webhook_endpoints e
                                  where e.owner_id = p_owner and p_type = any (e.events) and e.disabled_at is null) then
    return;
  end if;
  event := jsonb_build_object(
    'webhookId', 'msg_' || replace(gen_random_uuid()::text, '-', ''),
    'type', p_type,
    'timestamp', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'data', jsonb_build_object('ownerId', p_owner) || p_data);
  if project then
    insert into pgmq.q_webhook_delivery (vt, message)
    values (clock_timestamp(), event || jsonb_build_object('endpointId', null));
  end if;
  -- `for no key update`: an endpoint's secret (which refers to it) may still be written meanwhile.
  for endpoint in select e.id from public.webhook_endpoints e
                   where e.owner_id = p_owner and p_type = any (e.events) and e.disabled_at is null
                   order by e.id
                     for no key update of e loop
    perform voicegate.make_room_for_webhook(endpoint, p_owner, bound);
    insert into pgmq.q_webhook_delivery (vt, message)
    values (clock_timestamp(), event || jsonb_build_object('endpointId', endpoint));
  end loop;
end
$$;
