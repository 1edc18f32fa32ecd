-- What the queue consumers need beyond the lifecycle itself (DESIGN.md §4):
--   * lease extension while a provider call runs, without a version bump (it is not a transition);
--   * durable profiles for the offline `local` provider, so a voice survives a worker restart;
--   * the legacy outbox (the old outbox-first path): its rows become attempts, accepted, not primary.

set lock_timeout = '4s';

-- A worker holding a live lease pushes its expiry forward. Versions stay as they are: extending a
-- lease changes nobody's view of the attempt, and a bump would fence the holder's own next move.
create or replace function voicegate.extend_attempt_lease(
  p_attempt_id uuid,
  p_lease_owner text,
  p_seconds integer
) returns timestamptz
language plpgsql
security definer
set search_path = ''
as $$
declare
  expires timestamptz;
begin
  update public.voice_clone_attempts
     set lease_expires_at = now() + make_interval(secs => greatest(1, p_seconds))
   where id = p_attempt_id
     and lease_owner = p_lease_owner
     and lease_expires_at > now()
  returning lease_expires_at into expires;
  if expires is null then
    raise exception 'attempt % is not leased to %', p_attempt_id, p_lease_owner using errcode = 'VG423';
  end if;
  return expires;
end
$$;

revoke all on function voicegate.extend_attempt_lease(uuid, text, integer) from public;
grant execute on function voicegate.extend_attempt_lease(uuid, text, integer) to service_role;

-- The local provider's voices: what an account at a remote provider would hold.
create table voicegate.local_voices (
  voice_id text primary key,
  name text not null,
  language text not null,
  enrolment_key text not null unique,
  profile jsonb not null,
  created_at timestamptz not null default now()
);
-- service_role bypasses RLS; nobody else is granted anything.
alter table voicegate.local_voices enable row level security;
grant select, insert, update, delete on voicegate.local_voices to service_role;

-- Legacy producers wrote clone requests here and a poller picked them up. The insert trigger turns
-- each row into an attempt (`source = legacy_outbox`) in the same transaction, so the attempt's own
-- trigger enqueues it. A legacy row never displaces a live attempt: when the reflection already has
-- an active attempt that has not failed, the row is marked skipped instead.
create table public.voice_clone_outbox (
  id bigint generated always as identity primary key,
  owner_id uuid not null references auth.users (id) on delete cascade,
  voice_id uuid not null references public.voices (id),
  reflection_id uuid references public.reflections (id) on delete set null,
  sample_id uuid references public.voice_samples (id) on delete set null,
  provider text not null check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia')),
  status text not null default 'pending' check (status in ('pending', 'accepted', 'skipped')),
  attempt_id uuid references public.voice_clone_attempts (id) on delete set null,
  skip_reason text,
  created_at timestamptz not null default now(),
  processed_at timestamptz
);
alter table public.voice_clone_outbox enable row level security;
grant select, insert on public.voice_clone_outbox to service_role;

create or replace function voicegate.accept_legacy_outbox() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  attempt_id uuid;
begin
  if new.reflection_id is not null and exists (
       select from public.voice_clone_attempts
        where reflection_id = new.reflection_id and is_active and status not in ('failed', 'canceled')) then
    new.status := 'skipped';
    new.skip_reason := 'the reflection already has a live attempt';
  else
    insert into public.voice_clone_attempts (owner_id, voice_id, reflection_id, sample_id, provider, source)
    values (new.owner_id, new.voice_id, new.reflection_id, new.sample_id, new.provider, 'legacy_outbox')
    returning id into attempt_id;
    new.status := 'accepted';
    new.attempt_id := attempt_id;
  end if;
  new.processed_at := now();
  return new;
end
$$;

create trigger voice_clone_outbox_accept
  before insert on public.voice_clone_outbox
  for each row execute function voicegate.accept_legacy_outbox();

-- The last error of a message a consumer failed to handle, kept until the message is archived or
-- dead-lettered, so a dead letter (and `replay-dead-letters`) can say why it died.
create table voicegate.queue_message_errors (
  queue_name text not null,
  msg_id bigint not null,
  read_ct integer not null,
  error text not null check (length(error) <= 1000),
  at timestamptz not null default now(),
  primary key (queue_name, msg_id)
);
alter table voicegate.queue_message_errors enable row level security;
grant select, insert, update, delete on voicegate.queue_message_errors to service_role;
