-- Whether the project has a webhook endpoint (VOICEGATE_WEBHOOK_URL), as the workers say: only they know
-- it, and each maintenance sweep (the first as a worker starts) writes it. Every voice, sample, job and
-- launch event used to queue a message for the project's endpoint, which a worker without one read and
-- dropped: a send, a read and an archive per event for nothing (issue 15: about a fifth of the clone
-- step's throughput). Until a worker has said otherwise the project is assumed to have an endpoint, so
-- this switch never loses an event. All workers of a deployment share one configuration.

set lock_timeout = '4s';

create table voicegate.project_webhook (
  singleton boolean primary key default true check (singleton),
  configured boolean not null default true
);
insert into voicegate.project_webhook default values;

alter table voicegate.project_webhook enable row level security;
revoke all on voicegate.project_webhook from public;
grant select, update on voicegate.project_webhook to service_role;

-- As 20261122103238's, but the project's message only when it has an endpoint.
create or replace function voicegate.emit_webhook(p_type text, p_owner uuid, p_data jsonb) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  event jsonb := jsonb_build_object(
    'webhookId', 'msg_' || replace(gen_random_uuid()::text, '-', ''),
    'type', p_type,
    'timestamp', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'data', jsonb_build_object('ownerId', p_owner) || p_data);
begin
  if coalesce((select configured from voicegate.project_webhook), true) then
    perform pgmq.send('webhook_delivery', event || jsonb_build_object('endpointId', null));
  end if;
  perform pgmq.send('webhook_delivery', event || jsonb_build_object('endpointId', e.id))
     from public.webhook_endpoints e
    where e.owner_id = p_owner and p_type = any (e.events) and e.disabled_at is null;
end
$$;
