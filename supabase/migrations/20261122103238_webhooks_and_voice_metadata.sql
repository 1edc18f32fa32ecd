-- Webhooks and voice manifests (issue 17). Webhooks: lifecycle events delivered as Standard Webhooks from a
-- pgmq outbox queue.
--
-- Every event is sent by a trigger, in the transaction that makes the state change, so an event exists
-- exactly when its change commits, whoever makes it (a worker, the API, an operator script, plain SQL).
-- One message per delivery: the project's endpoint (VOICEGATE_WEBHOOK_URL, which only the workers know,
-- so its message is always written and a worker without one drops it) and each endpoint of the event's
-- owner that subscribed to its type. A message carries its `webhookId` through every retry and through a
-- replay from the dead letters, so receivers can deduplicate on it.

set lock_timeout = '4s';

select pgmq.create('webhook_delivery');

do $$
begin
  if to_regprocedure('pgmq.enable_notify_insert(text, integer)') is not null then
    perform pgmq.enable_notify_insert('webhook_delivery', 10);
  elsif to_regprocedure('pgmq.enable_notify_insert(text)') is not null then
    perform pgmq.enable_notify_insert('webhook_delivery');
  end if;
end
$$;

-- As 20261121000100 did for the first queues: only the service works the queues.
grant all on all tables in schema pgmq to service_role;
grant usage, select, update on all sequences in schema pgmq to service_role;

-- A user's endpoints. Users read their own (the Data API may list them); they are created and deleted
-- through `/v1/webhooks`, which checks the URL and generates the secret.
create table public.webhook_endpoints (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  url text not null check (length(url) between 8 and 2048),
  events text[] not null check (
    cardinality(events) between 1 and 7
    and events <@ array['sample.ready', 'sample.failed', 'voice.ready', 'voice.failed', 'synthesis.succeeded',
                        'synthesis.failed', 'reflection.launch_ready']::text[]),
  created_at timestamptz not null default now(),
  -- Set when the receiver answered 410 Gone: it asked for no more deliveries.
  disabled_at timestamptz
);
create index webhook_endpoints_owner_idx on public.webhook_endpoints (owner_id) where disabled_at is null;

alter table public.webhook_endpoints enable row level security;
revoke all on public.webhook_endpoints from anon, authenticated, service_role;
grant select on public.webhook_endpoints to authenticated;
grant select, insert, update, delete on public.webhook_endpoints to service_role;
create policy webhook_endpoints_owner_select on public.webhook_endpoints for select to authenticated
  using (owner_id = (select auth.uid()));

-- Each endpoint's signing secret (`whsec_<base64>`), apart from the endpoint so no user-facing role or
-- API ever reads it: PostgREST does not expose this schema and only the service may select from it. It
-- is kept as it is because the worker signs with it; it is shown to the user once, when created.
create table voicegate.webhook_secrets (
  endpoint_id uuid primary key references public.webhook_endpoints (id) on delete cascade,
  secret text not null check (secret like 'whsec\_%')
);
alter table voicegate.webhook_secrets enable row level security;
revoke all on voicegate.webhook_secrets from public;
grant select, insert on voicegate.webhook_secrets to service_role;

-- One event: the project's delivery and one per subscribed endpoint of `p_owner`, all with one id.
-- `p_data` holds identifiers and states only, never personal data.
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
  perform pgmq.send('webhook_delivery', event || jsonb_build_object('endpointId', null));
  perform pgmq.send('webhook_delivery', event || jsonb_build_object('endpointId', e.id))
     from public.webhook_endpoints e
    where e.owner_id = p_owner and p_type = any (e.events) and e.disabled_at is null;
end
$$;

-- sample.ready / sample.failed: a sample's check ended.
create or replace function voicegate.webhook_sample_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform voicegate.emit_webhook('sample.' || new.status, new.owner_id, jsonb_build_object(
    'sampleId', new.id,
    'voiceId', new.voice_id,
    'provider', new.provider,
    'status', new.status,
    'durationMs', new.duration_ms,
    'verdict', new.quality_report ->> 'verdict',
    'failureReason', new.failure_reason));
  return null;
end
$$;

create trigger voice_samples_webhook
  after update of status on public.voice_samples
  for each row
  when (old.status is distinct from new.status and new.status in ('ready', 'failed'))
  execute function voicegate.webhook_sample_event();

-- voice.ready / voice.failed: the clone attempt a voice follows ended. Only the active attempt speaks for
-- its voice (a superseded attempt's late result is never published), as in voicegate.publish_attempt.
create or replace function voicegate.webhook_attempt_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform voicegate.emit_webhook('voice.' || new.status, new.owner_id, jsonb_build_object(
    'voiceId', new.voice_id,
    'attemptId', new.id,
    'reflectionId', new.reflection_id,
    'provider', new.provider,
    'providerVoiceId', new.provider_voice_id,
    'targetModel', new.provider_target_model,
    'error', case when new.status = 'failed' and new.last_error_code is not null
                  then jsonb_build_object('code', new.last_error_code, 'message', new.last_error_message) end));
  return null;
end
$$;

create trigger voice_clone_attempts_webhook
  after update of status on public.voice_clone_attempts
  for each row
  when (old.status is distinct from new.status and new.status in ('ready', 'failed') and new.is_active)
  execute function voicegate.webhook_attempt_event();

-- synthesis.succeeded / synthesis.failed: a job ended. Its audio carries a C2PA manifest.
create or replace function voicegate.webhook_job_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform voicegate.emit_webhook('synthesis.' || new.status, new.owner_id, jsonb_build_object(
    'jobId', new.id,
    'voiceId', new.voice_id,
    'sampleId', new.sample_id,
    'attemptId', new.attempt_id,
    'status', new.status,
    'durationMs', new.duration_ms,
    'provenance', case when new.status = 'succeeded' then 'c2pa' end,
    'error', case when new.status = 'failed'
                  then jsonb_build_object('code', new.error_code, 'message', new.error_message) end));
  return null;
end
$$;

create trigger synthesis_jobs_webhook
  after update of status on public.synthesis_jobs
  for each row
  when (old.status is distinct from new.status and new.status in ('succeeded', 'failed'))
  execute function voicegate.webhook_job_event();

-- reflection.launch_ready: the mirror clients read became launch-ready (public.voice_launch_readiness's
-- rule, on the mirror of the active attempt: ready, synced, no preview left to hear).
create or replace function voicegate.webhook_launch_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  was_ready boolean := coalesce(old.voice ->> 'cloneStatus' = 'ready' and old.voice ->> 'runtimeStatus' = 'synced'
                                and not coalesce((old.voice ->> 'previewRequired')::boolean, false), false);
  is_ready boolean := coalesce(new.voice ->> 'cloneStatus' = 'ready' and new.voice ->> 'runtimeStatus' = 'synced'
                               and not coalesce((new.voice ->> 'previewRequired')::boolean, false), false);
begin
  if is_ready and not (was_ready and old.voice -> 'attemptId' is not distinct from new.voice -> 'attemptId') then
    perform voicegate.emit_webhook('reflection.launch_ready', new.owner_id, jsonb_build_object(
      'reflectionId', new.id,
      'voiceId', new.voice_id,
      'attemptId', new.voice -> 'attemptId',
      'provider', new.voice -> 'provider'));
  end if;
  return null;
end
$$;

create trigger reflections_launch_ready_webhook
  after update of voice on public.reflections
  for each row
  execute function voicegate.webhook_launch_event();

revoke all on function voicegate.emit_webhook(text, uuid, jsonb), voicegate.webhook_sample_event(),
  voicegate.webhook_attempt_event(), voicegate.webhook_job_event(), voicegate.webhook_launch_event()
  from public;

-- Voice manifests (issue 17): `voice-metadata/{owner}/{voice_id}.json`, written by the workers when a voice
-- becomes ready or changes provider and removed when the voice is deleted. The bucket comes from
-- supabase/config.toml. Owners may read their own voices' manifests; only the service writes them.
create policy voicegate_metadata_own_folder_select on storage.objects for select to authenticated
  using (bucket_id = 'voice-metadata' and (storage.foldername(name))[1] = (select auth.uid()::text));
