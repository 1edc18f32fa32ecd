-- How far a synthesis job has got: it is spoken a sentence (or a few short ones) at a time, and its
-- status shows `progress_done` of `progress_total` pieces while it runs.
alter table public.synthesis_jobs
  add column progress_done integer check (progress_done >= 0),
  add column progress_total integer check (progress_total >= 1),
  add constraint synthesis_job_progress_within check (progress_done is null or progress_done <= progress_total);
