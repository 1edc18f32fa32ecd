-- The studio page (issue 30): samples get a name of their own, and a synthesis job can be canceled.
--
-- A sample's name is what its owner calls it in the page ("Kitchen, morning"); null until named. The
-- consent's subject_name is another thing (who speaks) and stays as it was given. Only the service writes
-- it, after the caller's own check that the sample is theirs, as every other sample column.

set lock_timeout = '4s';

alter table public.voice_samples
  add column name text check (length(btrim(name)) between 1 and 200);

-- `canceled` (spelled as voice_clone_attempts spells it): the owner stopped a queued or running job. It
-- has ended like `succeeded` and `failed`: every write of a worker's run is fenced by its lease on a
-- `processing` row, so a run that was speaking the job finds its lease gone and stores nothing.
-- Both checks changed here are replaced NOT VALID; 20261123171733_names_and_cancel_validate validates them
-- and builds the clip-history index concurrently.
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.synthesis_jobs drop constraint synthesis_jobs_status_check;
alter table public.synthesis_jobs add constraint synthesis_jobs_status_check
  check (status in ('queued', 'processing', 'succeeded', 'failed', 'canceled')) not valid;

-- synthesis.canceled: a job its owner canceled has ended too, and a client that waits for the job's end by
-- webhook hears of it. Endpoints may now subscribe to it (an endpoint made before keeps the events it chose).
-- squawk-ignore ban-drop-constraint -- replaced just below, NOT VALID, by one that allows more
alter table public.webhook_endpoints drop constraint webhook_endpoints_events_check;
alter table public.webhook_endpoints add constraint webhook_endpoints_events_check check (
  cardinality(events) between 1 and 8
  and events <@ array['sample.ready', 'sample.failed', 'voice.ready', 'voice.failed', 'synthesis.succeeded',
                      'synthesis.failed', 'synthesis.canceled', 'reflection.launch_ready']::text[]) not valid;

drop trigger synthesis_jobs_webhook on public.synthesis_jobs;
create trigger synthesis_jobs_webhook
  after update of status on public.synthesis_jobs
  for each row
  when (old.status is distinct from new.status and new.status in ('succeeded', 'failed', 'canceled'))
  execute function voicegate.webhook_job_event();
