-- RLS is the boundary (DESIGN.md §7). Owners read their own rows; what clients may write is limited
-- by column privileges as well as by policies, so the mirror, the statuses and every provider field
-- are writable only by the service. `anon` gets nothing. Supabase's default privileges grant ALL on
-- new public tables to the API roles; we start from nothing and grant exactly what is meant.

set lock_timeout = '4s';

revoke all on public.reflections, public.voices, public.voice_consents, public.voice_samples,
  public.voice_clone_attempts, public.voice_clone_attempt_events, public.synthesis_jobs
  from anon, authenticated;

grant all on public.reflections, public.voices, public.voice_consents, public.voice_samples,
  public.voice_clone_attempts, public.voice_clone_attempt_events, public.synthesis_jobs
  to service_role;

alter table public.reflections enable row level security;
alter table public.voices enable row level security;
alter table public.voice_consents enable row level security;
alter table public.voice_samples enable row level security;
alter table public.voice_clone_attempts enable row level security;
alter table public.voice_clone_attempt_events enable row level security;
alter table public.synthesis_jobs enable row level security;

-- reflections: full ownership of the row, except the `voice` mirror and `voice_id`.
grant select, delete on public.reflections to authenticated;
grant insert (id, name), update (name) on public.reflections to authenticated;
create policy reflections_owner_select on public.reflections for select to authenticated
  using (owner_id = (select auth.uid()));
create policy reflections_owner_insert on public.reflections for insert to authenticated
  with check (owner_id = (select auth.uid()));
create policy reflections_owner_update on public.reflections for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy reflections_owner_delete on public.reflections for delete to authenticated
  using (owner_id = (select auth.uid()));

-- voices: owners name them; status and provider fields come from attempts. Delete is soft and done
-- by the service, so a deleted voice disappears for its owner.
grant select on public.voices to authenticated;
grant insert (id, name, language, consent_id), update (name, language) on public.voices to authenticated;
create policy voices_owner_select on public.voices for select to authenticated
  using (owner_id = (select auth.uid()) and deleted_at is null);
create policy voices_owner_insert on public.voices for insert to authenticated
  with check (
    owner_id = (select auth.uid())
    and (consent_id is null or exists (
      select from public.voice_consents c where c.id = consent_id and c.owner_id = (select auth.uid()))));
create policy voices_owner_update on public.voices for update to authenticated
  using (owner_id = (select auth.uid()) and deleted_at is null)
  with check (owner_id = (select auth.uid()));

-- voice_consents: a record of what the user agreed to; never edited or removed by the client.
grant select on public.voice_consents to authenticated;
grant insert (id, subject_name, consent_text_version, user_agent, ip_hash, statement_sample_path)
  on public.voice_consents to authenticated;
create policy voice_consents_owner_select on public.voice_consents for select to authenticated
  using (owner_id = (select auth.uid()));
create policy voice_consents_owner_insert on public.voice_consents for insert to authenticated
  with check (owner_id = (select auth.uid()));

-- voice_samples: the owner registers an object of their own folder under their own consent; the
-- measurements, status and purge belong to the service (a purge must remove the objects too).
grant select on public.voice_samples to authenticated;
grant insert (id, voice_id, consent_id, bucket_id, object_path, declared_type, transcript, language)
  on public.voice_samples to authenticated;
create policy voice_samples_owner_select on public.voice_samples for select to authenticated
  using (owner_id = (select auth.uid()));
create policy voice_samples_owner_insert on public.voice_samples for insert to authenticated
  with check (
    owner_id = (select auth.uid())
    and bucket_id = 'voice-samples'
    and (storage.foldername(object_path))[1] = (select auth.uid()::text)
    and exists (select from public.voice_consents c
                 where c.id = consent_id and c.owner_id = (select auth.uid()))
    and (voice_id is null or exists (select from public.voices v
                                      where v.id = voice_id and v.owner_id = (select auth.uid()))));

-- Attempts, their events and synthesis jobs: read-only for owners, written only by the service.
grant select on public.voice_clone_attempts, public.voice_clone_attempt_events, public.synthesis_jobs
  to authenticated;
create policy voice_clone_attempts_owner_select on public.voice_clone_attempts for select to authenticated
  using (owner_id = (select auth.uid()));
create policy voice_clone_attempt_events_owner_select on public.voice_clone_attempt_events
  for select to authenticated using (owner_id = (select auth.uid()));
create policy synthesis_jobs_owner_select on public.synthesis_jobs for select to authenticated
  using (owner_id = (select auth.uid()));
