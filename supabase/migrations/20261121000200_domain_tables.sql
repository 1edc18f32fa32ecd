-- The domain of DESIGN.md §2. `voice_clone_attempts` is the lifecycle authority; `reflections.voice`
-- is a mirror of the active attempt that only the lifecycle functions write.

set lock_timeout = '4s';

-- Functions that are not part of the client-facing API live outside `public`, so PostgREST does not
-- expose them.
create schema if not exists voicegate;
revoke all on schema voicegate from public;
grant usage on schema voicegate to service_role;

create table public.voice_consents (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  subject_name text not null check (length(btrim(subject_name)) between 1 and 200),
  consent_text_version text not null check (length(consent_text_version) between 1 and 50),
  accepted_at timestamptz not null default now(),
  user_agent text check (length(user_agent) <= 1000),
  ip_hash text check (length(ip_hash) <= 128),
  statement_sample_path text check (length(statement_sample_path) <= 1024),
  created_at timestamptz not null default now()
);
create index voice_consents_owner_idx on public.voice_consents (owner_id);

create table public.voices (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null check (length(btrim(name)) between 1 and 200),
  language text check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
  status text not null default 'draft'
    check (status in ('draft', 'cloning', 'ready', 'failed')),
  tts_provider text check (tts_provider in ('local', 'qwen', 'elevenlabs', 'cartesia')),
  provider_voice_id text,
  provider_target_model text,
  provider_voice_kind text,
  provider_region text,
  provider_request_id text,
  provider_metadata jsonb not null default '{}'::jsonb,
  consent_id uuid references public.voice_consents (id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz
);
create index voices_owner_idx on public.voices (owner_id) where deleted_at is null;
create unique index voices_provider_voice_uidx on public.voices (tts_provider, provider_voice_id)
  where provider_voice_id is not null and deleted_at is null;

create table public.reflections (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null check (length(btrim(name)) between 1 and 200),
  voice_id uuid references public.voices (id) on delete set null,
  voice jsonb not null default jsonb_build_object(
    'cloneStatus', 'none', 'runtimeStatus', 'none', 'previewRequired', false,
    'previewStatus', 'not_required', 'provider', null, 'voiceId', null, 'providerVoiceId', null,
    'targetModel', null, 'attemptId', null, 'lastError', null, 'updatedAt', null, 'version', 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index reflections_owner_idx on public.reflections (owner_id);

create table public.voice_samples (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  voice_id uuid references public.voices (id) on delete set null,
  consent_id uuid not null references public.voice_consents (id),
  bucket_id text not null default 'voice-samples',
  object_path text not null check (length(object_path) between 1 and 1024),
  declared_type text check (length(declared_type) <= 255),
  sniffed_type text,
  size_bytes bigint check (size_bytes >= 0),
  duration_ms integer check (duration_ms >= 0),
  sample_rate integer check (sample_rate > 0),
  channels smallint check (channels > 0),
  quality_report jsonb,
  processed_object_path text,
  status text not null default 'pending'
    check (status in ('pending', 'processing', 'ready', 'failed')),
  failure_reason text,
  transcript text check (length(transcript) <= 5000),
  language text check (language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
  expires_at timestamptz not null default now() + interval '30 days',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (bucket_id, object_path)
);
create index voice_samples_owner_idx on public.voice_samples (owner_id);
create index voice_samples_expires_idx on public.voice_samples (expires_at);

create table public.voice_clone_attempts (
  id uuid primary key default gen_random_uuid(),
  voice_id uuid not null references public.voices (id),
  reflection_id uuid references public.reflections (id) on delete set null,
  sample_id uuid references public.voice_samples (id) on delete set null,
  owner_id uuid not null references auth.users (id) on delete cascade,
  provider text not null check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia')),
  source text not null
    check (source in ('sample_upload', 'custom_voice_id', 'legacy_outbox', 'conversation_audio')),
  status text not null default 'queued'
    check (status in ('queued', 'processing', 'verifying', 'ready', 'failed', 'canceled', 'superseded')),
  runtime_status text not null default 'pending'
    check (runtime_status in ('pending', 'syncing', 'synced', 'sync_failed')),
  preview_required boolean not null default true,
  preview_status text not null default 'pending'
    check (preview_status in ('not_required', 'pending', 'generating', 'ready', 'completed')),
  retry_count integer not null default 0 check (retry_count >= 0),
  max_retries integer not null default 5 check (max_retries >= 0),
  next_retry_at timestamptz,
  lease_owner text,
  lease_expires_at timestamptz,
  -- Stored before any provider call, so a retry after a crash finds the voice it may have made.
  enrolment_key text not null default '',
  provider_voice_id text,
  provider_target_model text,
  provider_request_id text,
  provider_metadata jsonb not null default '{}'::jsonb,
  last_error_code text,
  last_error_message text check (length(last_error_message) <= 500),
  is_active boolean not null default true,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  constraint attempt_preview_consistent
    check ((preview_required and preview_status <> 'not_required')
      or (not preview_required and preview_status in ('not_required', 'completed'))),
  constraint attempt_lease_complete check ((lease_owner is null) = (lease_expires_at is null))
);
-- Invariant 2: at most one active attempt per reflection.
create unique index voice_clone_attempts_one_active_uidx
  on public.voice_clone_attempts (reflection_id) where is_active and reflection_id is not null;
create index voice_clone_attempts_owner_idx on public.voice_clone_attempts (owner_id);
create index voice_clone_attempts_voice_idx on public.voice_clone_attempts (voice_id);
create index voice_clone_attempts_open_idx on public.voice_clone_attempts (status, lease_expires_at)
  where status in ('queued', 'processing', 'verifying');
create unique index voice_clone_attempts_enrolment_key_uidx
  on public.voice_clone_attempts (enrolment_key) where enrolment_key <> '';

create table public.voice_clone_attempt_events (
  id bigint generated always as identity primary key,
  attempt_id uuid not null references public.voice_clone_attempts (id) on delete cascade,
  owner_id uuid not null,
  dimension text not null check (dimension in ('status', 'runtime', 'preview', 'active', 'data')),
  from_state text,
  to_state text,
  actor text not null check (length(actor) between 1 and 200),
  detail jsonb not null default '{}'::jsonb,
  at timestamptz not null default now()
);
create index voice_clone_attempt_events_attempt_idx on public.voice_clone_attempt_events (attempt_id, id);

create table public.synthesis_jobs (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  voice_id uuid references public.voices (id),
  sample_id uuid references public.voice_samples (id) on delete set null,
  input_text text not null check (length(btrim(input_text)) between 1 and 5000),
  status text not null default 'queued'
    check (status in ('queued', 'processing', 'succeeded', 'failed')),
  output_bucket_id text,
  output_object_path text,
  duration_ms integer check (duration_ms >= 0),
  error_code text,
  error_message text check (length(error_message) <= 500),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  constraint synthesis_job_has_source check (voice_id is not null or sample_id is not null)
);
create index synthesis_jobs_owner_idx on public.synthesis_jobs (owner_id);

create or replace function voicegate.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create trigger voices_touch before update on public.voices
  for each row execute function voicegate.touch_updated_at();
create trigger reflections_touch before update on public.reflections
  for each row execute function voicegate.touch_updated_at();
create trigger voice_samples_touch before update on public.voice_samples
  for each row execute function voicegate.touch_updated_at();
create trigger synthesis_jobs_touch before update on public.synthesis_jobs
  for each row execute function voicegate.touch_updated_at();
