-- The second step of 20261122102917_synthesis_progress, in a transaction of its own: validating a
-- constraint scans the table under a lock that lets reads and writes go on (SHARE UPDATE EXCLUSIVE).

set lock_timeout = '4s';

alter table public.synthesis_jobs validate constraint synthesis_job_progress_within;
