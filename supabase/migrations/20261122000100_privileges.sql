-- Privileges, not only policies. Supabase's default privileges give `anon`, `authenticated` and
-- `service_role` ALL on every table the migrating role creates in `public`: TRUNCATE, TRIGGER,
-- REFERENCES (and MAINTAIN from PostgreSQL 17) included, which no RLS policy governs. Each object
-- below ends with exactly what tests/integration/test_privileges.py allows, and nothing else.

set lock_timeout = '4s';

-- Kept the defaults since it was created: any signed-in user, or anon, could TRUNCATE it.
revoke all on public.voice_clone_outbox from anon, authenticated, service_role;
grant select, insert on public.voice_clone_outbox to service_role;

-- The service reads and writes rows. It never truncates (no trigger of ours would see it), never
-- adds triggers and never references these tables from its own.
revoke all on public.reflections, public.voices, public.voice_consents, public.voice_samples,
  public.voice_clone_attempts, public.voice_clone_attempt_events, public.synthesis_jobs,
  public.reflection_sessions
  from service_role;
grant select, insert, update, delete on public.reflections, public.voices, public.voice_consents,
  public.voice_samples, public.voice_clone_attempts, public.voice_clone_attempt_events,
  public.synthesis_jobs, public.reflection_sessions
  to service_role;

-- Identity columns draw from their sequences with no privilege on them; what the defaults gave
-- (setval included) could only be used to break the ids.
revoke all on sequence public.voice_clone_attempt_events_id_seq, public.voice_clone_outbox_id_seq
  from anon, authenticated, service_role;

-- Trigger functions run whoever fires the trigger: EXECUTE is checked only when a trigger is
-- created. These two came after 20261121000300's blanket revoke and kept PUBLIC's default.
revoke all on function voicegate.check_session_launch(), voicegate.accept_legacy_outbox() from public;

-- Tables and sequences the migrating role creates from now on start without what RLS cannot
-- govern. SELECT, INSERT, UPDATE, DELETE and USAGE stay, so the Data API treats the app's own new
-- tables as before; our own tables revoke and grant explicitly all the same.
alter default privileges in schema public
  revoke truncate, references, trigger on tables from anon, authenticated, service_role;
alter default privileges in schema public
  revoke update on sequences from anon, authenticated, service_role;
do $$
begin
  if current_setting('server_version_num')::integer >= 170000 then
    alter default privileges in schema public revoke maintain on tables from anon, authenticated, service_role;
  end if;
end
$$;
