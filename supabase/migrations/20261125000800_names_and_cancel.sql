-- The studio page (issue 30): samples get a name of their own, and a synthesis job can be canceled.
--
-- A sample's name is what its owner calls it in the page ("Kitchen, morning"); null until named. The
-- consent's subject_name is another thing (who speaks) and stays as it was given. Only the service writes
-- it, after the caller's own check that the sample is theirs, as every other sample column.
alter table public.voice_samples
  add column name text check (length(btrim(name)) between 1 and 200);

-- `canceled` (spelled as voice_clone_attempts spells it): the owner stopped a queued or running job. It
-- has ended like `succeeded` and `failed`: every write of a worker's run is fenced by its lease on a
-- `processing` row, so a run that was speaking the job finds its lease gone and stores nothing.
alter table public.synthesis_jobs drop constraint synthesis_jobs_status_check;
alter table public.synthesis_jobs add constraint synthesis_jobs_status_check
  check (status in ('queued', 'processing', 'succeeded', 'failed', 'canceled'));

-- A voice's history of clips, newest first, a page at a time (keyset on created_at, id).
create index synthesis_jobs_voice_history_idx on public.synthesis_jobs (voice_id, created_at desc, id desc);
