-- The PRD flow (`/api/v1/voice-samples`, `/api/v1/clone`): samples checked on their own queue, and
-- synthesis jobs that wait for their voice's clone attempt.

-- The provider a sample is prepared for: its limits decide the checks, its wanted form the processed
-- object, and an enrolment with the same provider reuses that object.
alter table public.voice_samples
  add column provider text check (provider in ('local', 'qwen', 'elevenlabs', 'cartesia'));

-- Every job speaks with a voice: a clone request from a sample creates the voice (and its attempt)
-- first. So a job no longer holds its sample alive, and purging a sample never breaks a job.
alter table public.synthesis_jobs drop constraint synthesis_job_has_source;
alter table public.synthesis_jobs alter column voice_id set not null;
alter table public.synthesis_jobs
  -- The clone attempt the job waits for; null when the voice was ready when the job was made.
  add column attempt_id uuid references public.voice_clone_attempts (id) on delete set null,
  -- Provider failures already retried (a timeout is retried once, then the job fails).
  add column retry_count integer not null default 0 check (retry_count >= 0),
  add constraint synthesis_job_output_complete
    check ((output_object_path is null) = (output_bucket_id is null)),
  add constraint synthesis_job_succeeded_has_output
    check (status <> 'succeeded' or output_object_path is not null);
create index synthesis_jobs_waiting_idx on public.synthesis_jobs (attempt_id) where status = 'queued';

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
