-- The second step of 20261123103505_synthesis_job_lease, in a transaction of its own: validating a
-- constraint scans the table under a lock that lets reads and writes go on (SHARE UPDATE EXCLUSIVE).

set lock_timeout = '4s';

alter table public.synthesis_jobs validate constraint synthesis_job_lease_complete;
alter table public.synthesis_jobs validate constraint synthesis_job_processing_leased;
