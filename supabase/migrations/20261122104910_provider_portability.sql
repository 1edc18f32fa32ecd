-- Provider portability (issue 16): the `selfhosted` provider, every provider reference a voice has had,
-- re-enrolment from the stored sample (operator migrations and provider churn), and samples kept for
-- re-enrolment with their owner's consent.

set lock_timeout = '4s';

-- `selfhosted`: any server that speaks the OpenAI-shaped speech API (vLLM-Omni, chatterbox-tts-api,
-- a Modal deployment of either). Each check is replaced NOT VALID (checked for new rows from here on);
-- 20261122104911_provider_portability_validate validates them in a transaction of its own.
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.voices drop constraint voices_tts_provider_check;
alter table public.voices add constraint voices_tts_provider_check
  check (tts_provider in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted')) not valid;
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_provider_check;
alter table public.voice_clone_attempts add constraint voice_clone_attempts_provider_check
  check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted')) not valid;
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.voice_clone_outbox drop constraint voice_clone_outbox_provider_check;
alter table public.voice_clone_outbox add constraint voice_clone_outbox_provider_check
  check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted')) not valid;
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.voice_samples drop constraint voice_samples_provider_check;
alter table public.voice_samples add constraint voice_samples_provider_check
  check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted')) not valid;

-- Two new reasons to make an attempt: an operator moving a voice to another provider (or back), and a
-- provider that lost a voice (or retired its model), both re-enrolling from the stored sample.
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.voice_clone_attempts drop constraint voice_clone_attempts_source_check;
alter table public.voice_clone_attempts add constraint voice_clone_attempts_source_check
  check (source in ('sample_upload', 'custom_voice_id', 'legacy_outbox', 'conversation_audio',
                    'provider_migration', 'provider_churn')) not valid;

-- Every provider voice a voice has spoken with: which provider, which voice, for which model, when and
-- why it was made (the source of the attempt that first reached `ready` with it), when it was last
-- seen at the provider and, once the provider no longer had it, when and why it died. Rolling back to
-- a provider reuses its reference from here when the provider still has it.
create table public.voice_provider_references (
  id uuid primary key default gen_random_uuid(),
  voice_id uuid not null references public.voices (id) on delete cascade,
  owner_id uuid not null references auth.users (id) on delete cascade,
  provider text not null check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted')),
  provider_voice_id text not null check (length(provider_voice_id) between 1 and 500),
  target_model text,
  attempt_id uuid references public.voice_clone_attempts (id) on delete set null,
  reason text not null
    check (reason in ('sample_upload', 'custom_voice_id', 'legacy_outbox', 'conversation_audio',
                      'provider_migration', 'provider_churn')),
  created_at timestamptz not null default now(),
  last_verified_at timestamptz not null default now(),
  gone_at timestamptz,
  gone_reason text check (gone_reason in ('voice_not_found', 'model_retired')),
  unique (voice_id, provider, provider_voice_id),
  constraint voice_provider_reference_gone_complete check ((gone_at is null) = (gone_reason is null))
);
create index voice_provider_references_owner_idx on public.voice_provider_references (owner_id);

alter table public.voice_provider_references enable row level security;
revoke all on public.voice_provider_references from anon, authenticated, service_role;
grant select on public.voice_provider_references to authenticated;
grant select, insert, update, delete on public.voice_provider_references to service_role;
create policy voice_provider_references_owner_select on public.voice_provider_references
  for select to authenticated using (owner_id = (select auth.uid()));

-- Recorded by the attempt that reaches `ready` with a provider voice, in that transaction; a reference
-- seen again (a rollback that reuses it) is marked alive and verified now.
create or replace function voicegate.record_provider_reference() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.voice_provider_references
    (voice_id, owner_id, provider, provider_voice_id, target_model, attempt_id, reason)
  values (new.voice_id, new.owner_id, new.provider, new.provider_voice_id, new.provider_target_model, new.id,
          new.source)
  on conflict (voice_id, provider, provider_voice_id) do update
     set target_model = coalesce(excluded.target_model, public.voice_provider_references.target_model),
         last_verified_at = now(),
         gone_at = null,
         gone_reason = null;
  return null;
end
$$;
revoke all on function voicegate.record_provider_reference() from public;

create trigger voice_clone_attempts_record_reference
  after update of status on public.voice_clone_attempts
  for each row
  when (new.status = 'ready' and old.status is distinct from 'ready' and new.provider_voice_id is not null)
  execute function voicegate.record_provider_reference();

-- The references the attempts made so far.
insert into public.voice_provider_references
  (voice_id, owner_id, provider, provider_voice_id, target_model, attempt_id, reason, created_at, last_verified_at)
select distinct on (a.voice_id, a.provider, a.provider_voice_id)
       a.voice_id, a.owner_id, a.provider, a.provider_voice_id, a.provider_target_model, a.id, a.source,
       coalesce(a.finished_at, a.updated_at), a.updated_at
  from public.voice_clone_attempts a
 where a.provider_voice_id is not null
   and (a.status = 'ready' or (a.status = 'superseded' and a.runtime_status <> 'pending'))
 order by a.voice_id, a.provider, a.provider_voice_id, a.created_at;

-- The voice row follows its active attempt (invariant 3) as before, with one change: an attempt that
-- moves the voice to another provider, or re-enrols it because the provider lost it, clears the old
-- provider voice instead of keeping it until the new one exists. A voice id of one provider is never
-- paired with another provider, and a job made meanwhile waits for the new voice.
create or replace function voicegate.publish_attempt(a public.voice_clone_attempts) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not a.is_active then
    return;
  end if;
  if a.reflection_id is not null then
    update public.reflections
       set voice = voicegate.attempt_mirror(a), voice_id = a.voice_id
     where id = a.reflection_id;
  end if;
  -- A canceled active attempt leaves the voice as it was before the attempt started.
  if a.status = 'canceled' then
    return;
  end if;
  update public.voices v
     set status = case a.status when 'ready' then 'ready' when 'failed' then 'failed' else 'cloning' end,
         tts_provider = a.provider,
         provider_voice_id = case when a.provider_voice_id is not null then a.provider_voice_id
                                  when v.tts_provider is distinct from a.provider
                                       or a.source = 'provider_churn' then null
                                  else v.provider_voice_id end,
         provider_target_model = case when a.provider_voice_id is not null
                                      then coalesce(a.provider_target_model,
                                                    case when v.tts_provider = a.provider
                                                         then v.provider_target_model end)
                                      when v.tts_provider is distinct from a.provider
                                           or a.source = 'provider_churn' then null
                                      else v.provider_target_model end,
         provider_request_id = case when a.provider_voice_id is not null
                                    then coalesce(a.provider_request_id,
                                                  case when v.tts_provider = a.provider
                                                       then v.provider_request_id end)
                                    when v.tts_provider is distinct from a.provider
                                         or a.source = 'provider_churn' then null
                                    else v.provider_request_id end,
         provider_metadata = case when a.provider_voice_id is not null then a.provider_metadata
                                  when v.tts_provider is distinct from a.provider
                                       or a.source = 'provider_churn' then '{}'::jsonb
                                  else v.provider_metadata end
   where v.id = a.voice_id;
end
$$;
revoke all on function voicegate.publish_attempt(public.voice_clone_attempts) from public;

-- A job heals its voice at most once: the second loss fails it.
alter table public.synthesis_jobs add column healed_at timestamptz;

-- Keeping a sample for re-enrolment is a consent of its own, recorded with the consent version whose
-- wording offered it, and withdrawable.
alter table public.voice_consents
  add column keep_sample boolean not null default false,
  add column keep_sample_withdrawn_at timestamptz;
grant insert (keep_sample) on public.voice_consents to authenticated;

-- A kept sample loses its original when its retention ends; its cleaned copy stays while the voice
-- lives. `processed_provider`: the provider the cleaned copy was made for (it is remade for another).
alter table public.voice_samples
  add column original_removed_at timestamptz,
  add column processed_provider text
    check (processed_provider in ('local', 'qwen', 'elevenlabs', 'cartesia', 'selfhosted'));
update public.voice_samples set processed_provider = provider where processed_object_path is not null;

-- The `selfhosted` provider's voices on a server without a voice registry: the cleaned reference and
-- its transcript, sent with every synthesis. Only the service reads them.
create table voicegate.selfhosted_voices (
  voice_id text primary key check (length(voice_id) between 1 and 200),
  enrolment_key text not null unique,
  name text not null,
  language text,
  ref_text text check (length(ref_text) <= 5000),
  audio bytea not null,
  mime_type text not null,
  created_at timestamptz not null default now()
);
alter table voicegate.selfhosted_voices enable row level security;
revoke all on voicegate.selfhosted_voices from public;
grant select, insert, update, delete on voicegate.selfhosted_voices to service_role;

-- Such a reference is the speaker's recording, kept in this database: it goes with its voice.
create or replace function voicegate.forget_deleted_voice_references() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from voicegate.selfhosted_voices s
   where s.voice_id in (select a.provider_voice_id from public.voice_clone_attempts a
                         where a.voice_id = new.id and a.provider = 'selfhosted'
                           and a.provider_voice_id is not null
                        union
                        select r.provider_voice_id from public.voice_provider_references r
                         where r.voice_id = new.id and r.provider = 'selfhosted');
  return null;
end
$$;
revoke all on function voicegate.forget_deleted_voice_references() from public;

create trigger voices_forget_deleted_references
  after update of deleted_at on public.voices
  for each row
  when (old.deleted_at is null and new.deleted_at is not null)
  execute function voicegate.forget_deleted_voice_references();
