-- A launched session of a reflection (POST /v1/reflections/{id}/sessions). Only a reflection whose
-- active attempt passes voice_launch_readiness may launch; the check runs in the same statement.

set lock_timeout = '4s';

create table public.reflection_sessions (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  reflection_id uuid not null references public.reflections (id) on delete cascade,
  attempt_id uuid not null references public.voice_clone_attempts (id),
  created_at timestamptz not null default now()
);
create index reflection_sessions_reflection_idx on public.reflection_sessions (reflection_id);

create or replace function voicegate.check_session_launch() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  blocking text[];
  active_id uuid;
begin
  select owner_id into strict new.owner_id from public.reflections where id = new.reflection_id;
  select id into active_id from public.voice_clone_attempts where reflection_id = new.reflection_id and is_active;
  select reasons into blocking from public.voice_launch_readiness(new.reflection_id);
  if active_id is distinct from new.attempt_id or cardinality(blocking) > 0 then
    raise exception 'reflection % cannot launch: %', new.reflection_id, coalesce(blocking, array['no_voice'])
      using errcode = 'VG422';
  end if;
  return new;
end
$$;

create trigger reflection_sessions_check_launch
  before insert on public.reflection_sessions
  for each row execute function voicegate.check_session_launch();

revoke all on public.reflection_sessions from anon, authenticated;
grant all on public.reflection_sessions to service_role;
grant select on public.reflection_sessions to authenticated;
grant insert (reflection_id, attempt_id) on public.reflection_sessions to authenticated;
alter table public.reflection_sessions enable row level security;
create policy reflection_sessions_owner_select on public.reflection_sessions for select to authenticated
  using (owner_id = (select auth.uid()));
create policy reflection_sessions_owner_insert on public.reflection_sessions for insert to authenticated
  with check (owner_id = (select auth.uid())
              and exists (select from public.reflections r
                           where r.id = reflection_id and r.owner_id = (select auth.uid())));
