-- How far a synthesis job has got: it is spoken a sentence (or a few short ones) at a time, and its
-- status shows `progress_done` of `progress_total` pieces while it runs.

set lock_timeout = '4s';

alter table public.synthesis_jobs
  add column progress_done integer check (progress_done >= 0),
  add column progress_total integer check (progress_total >= 1),
  -- Validated by 20261122102918_synthesis_progress_validate, in a transaction of its own.
  add constraint synthesis_job_progress_within check (progress_done is null or progress_done <= progress_total)
    not valid;
