-- The PRD flow (`/api/v1/voice-samples`, `/api/v1/clone`): samples checked on their own queue, and
-- synthesis jobs that wait for their voice's clone attempt.

set lock_timeout = '4s';

-- The provider a sample is prepared for: its limits decide the checks, its wanted form the processed
-- object, and an enrolment with the same provider reuses that object.
alter table public.voice_samples
  add column provider text check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia'));

-- Every job speaks with a voice: a clone request from a sample creates the voice (and its attempt)
-- first. So a job no longer holds its sample alive, and purging a sample never breaks a job.
-- The constraints are added NOT VALID (checked for new rows from here on, existing rows not scanned under
-- this file's lock); 20261121073714_samples_and_synthesis_validate validates them, makes voice_id NOT NULL
-- through its validated check and builds the waiting-jobs index concurrently.
-- squawk-ignore ban-drop-constraint -- implied by synthesis_jobs_voice_id_not_null, added just below
alter table public.synthesis_jobs drop constraint synthesis_job_has_source;
alter table public.synthesis_jobs
  add constraint synthesis_jobs_voice_id_not_null check (voice_id is not null) not valid;
alter table public.synthesis_jobs
  -- The clone attempt the job waits for; null when the voice was ready when the job was made.
  add column attempt_id uuid,
  -- Provider failures already retried (a timeout is retried once, then the job fails).
  add column retry_count integer not null default 0 check (retry_count >= 0),
  add constraint synthesis_jobs_attempt_id_fkey
    foreign key (attempt_id) references public.voice_clone_attempts (id) on delete set null not valid,
  add constraint synthesis_job_output_complete
    check ((output_object_path is null) = (output_bucket_id is null)) not valid,
  add constraint synthesis_job_succeeded_has_output
    check (status <> 'succeeded' or output_object_path is not null) not valid;

-- A job waiting on an attempt is woken when the attempt ends, in the transaction that ends it, so
-- whichever worker finishes the clone hands the job on without anyone polling.
create or replace function voicegate.wake_synthesis_jobs() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pgmq.send('voice_synthesis', jsonb_build_object('jobId', j.id))
     from public.synthesis_jobs j
    where j.attempt_id = new.id and j.status = 'queued';
  return null;
end
$$;
revoke all on function voicegate.wake_synthesis_jobs() from public;

create trigger voice_clone_attempts_wake_synthesis
  after update of status on public.voice_clone_attempts
  for each row
  when (old.status is distinct from new.status
        and new.status in ('ready', 'failed', 'canceled', 'superseded'))
  execute function voicegate.wake_synthesis_jobs();
