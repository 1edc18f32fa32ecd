-- A synthesis job being spoken is leased to the one run that speaks it (issue 25). A job used to be
-- `processing` with no owner, so any second delivery of its message (the attempt's wake-up beside the
-- waiting job's own re-check, a message whose visibility ran out) started it over: progress went back to
-- 0 and two runs spoke every part, the second one on after the job was done. Now a run claims the job
-- with a lease it extends while it works; a delivery that finds a live lease leaves the job alone and
-- looks again when the lease would have run out, so a worker that died mid-job is taken over then.

set lock_timeout = '4s';

alter table public.synthesis_jobs
  add column lease_owner text check (length(lease_owner) between 1 and 200),
  add column lease_expires_at timestamptz;

-- Jobs left `processing` by workers that ran before leases existed: leased to nobody alive, expired.
update public.synthesis_jobs
   set lease_owner = 'before-leases', lease_expires_at = now()
 where status = 'processing';

-- Validated by 20261123103506_synthesis_job_lease_validate, in a transaction of its own.
alter table public.synthesis_jobs
  add constraint synthesis_job_lease_complete check ((lease_owner is null) = (lease_expires_at is null)) not valid,
  add constraint synthesis_job_processing_leased check (status <> 'processing' or lease_owner is not null)
    not valid;
