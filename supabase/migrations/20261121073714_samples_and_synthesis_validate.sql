-- The second step of 20261121073713_samples_and_synthesis, in a transaction of its own: validating a
-- constraint scans the table under a lock that lets reads and writes go on (SHARE UPDATE EXCLUSIVE), and
-- SET NOT NULL on a column whose validated check already says so skips its own scan. The index is built
-- concurrently, which no transaction may hold: `voicegate migrate` and `supabase db push` (CLI 2.109 or
-- later) run such a statement on its own, after committing the ones before it.

set lock_timeout = '4s';

alter table public.synthesis_jobs validate constraint synthesis_jobs_voice_id_not_null;
alter table public.synthesis_jobs validate constraint synthesis_jobs_attempt_id_fkey;
alter table public.synthesis_jobs validate constraint synthesis_job_output_complete;
alter table public.synthesis_jobs validate constraint synthesis_job_succeeded_has_output;
alter table public.synthesis_jobs alter column voice_id set not null;
-- squawk-ignore ban-drop-constraint -- only the helper whose guarantee voice_id's NOT NULL now holds
alter table public.synthesis_jobs drop constraint if exists synthesis_jobs_voice_id_not_null;

-- Run on its own, outside the transaction; not IF NOT EXISTS, which would keep the invalid index a failed
-- build leaves behind (drop that one and run the migration again).
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently synthesis_jobs_waiting_idx on public.synthesis_jobs (attempt_id)
  where status = 'queued';
