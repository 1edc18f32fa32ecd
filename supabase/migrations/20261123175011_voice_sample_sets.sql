-- Voices from several samples (issue 30): the samples a clone attempt enrols, in the order sent.
--
-- An attempt keeps its `sample_id` (the set's first sample) so everything that reads one sample still
-- works; an attempt with rows here enrols all of them. The voice's samples are those of its newest
-- attempt that has a set: adding or removing a sample is a new attempt (a re-enrolment), and the voice
-- keeps its provider voice until that attempt is ready.
--
-- Each row also holds what the enrolment measured on that sample (speech seconds, loudness, median
-- pitch, a coarse spectral profile), from which the set's quality report is derived when it is read:
-- the measures are written by the worker that enrols the set, after it has the cleaned audio.

set lock_timeout = '4s';

create table public.voice_clone_attempt_samples (
  attempt_id uuid not null references public.voice_clone_attempts (id) on delete cascade,
  sample_id uuid not null references public.voice_samples (id) on delete cascade,
  owner_id uuid not null references auth.users (id) on delete cascade,
  position smallint not null check (position between 0 and 24),
  speech_s real check (speech_s >= 0),
  loudness_lufs real,
  median_pitch_hz real check (median_pitch_hz > 0),
  spectrum_db real[] check (cardinality(spectrum_db) between 1 and 64),
  primary key (attempt_id, sample_id),
  unique (attempt_id, position)
);
create index voice_clone_attempt_samples_sample_idx on public.voice_clone_attempt_samples (sample_id);
create index voice_clone_attempt_samples_owner_idx on public.voice_clone_attempt_samples (owner_id);

-- Read-only for owners, written only by the service, as the attempts themselves.
alter table public.voice_clone_attempt_samples enable row level security;
revoke all on public.voice_clone_attempt_samples from anon, authenticated, service_role;
grant select on public.voice_clone_attempt_samples to authenticated;
grant select, insert, update, delete on public.voice_clone_attempt_samples to service_role;
create policy voice_clone_attempt_samples_owner_select on public.voice_clone_attempt_samples
  for select to authenticated using (owner_id = (select auth.uid()));

-- A set is the attempt owner's own samples: one of another user's can never be enrolled into a voice,
-- whoever writes the row.
create function voicegate.check_attempt_sample() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  if not exists (select from public.voice_clone_attempts a
                  where a.id = new.attempt_id and a.owner_id = new.owner_id)
     or not exists (select from public.voice_samples s
                     where s.id = new.sample_id and s.owner_id = new.owner_id) then
    raise exception 'a sample set holds its attempt owner''s own samples' using errcode = '42501';
  end if;
  return new;
end;
$$;
revoke all on function voicegate.check_attempt_sample() from public;
create trigger voice_clone_attempt_samples_owned
  before insert or update of attempt_id, sample_id, owner_id on public.voice_clone_attempt_samples
  for each row execute function voicegate.check_attempt_sample();
