-- The second step of 20261123171732_names_and_cancel, in a transaction of its own: validating a
-- constraint scans the table under a lock that lets reads and writes go on (SHARE UPDATE EXCLUSIVE). The
-- index is built concurrently, which no transaction may hold: `voicegate migrate` and `supabase db push`
-- (CLI 2.109 or later) run such a statement on its own, after committing the ones before it.

set lock_timeout = '4s';

alter table public.synthesis_jobs validate constraint synthesis_jobs_status_check;
alter table public.webhook_endpoints validate constraint webhook_endpoints_events_check;

-- A voice's history of clips, newest first, a page at a time (keyset on created_at, id). Run on its own,
-- outside the transaction; not IF NOT EXISTS, which would keep the invalid index a failed build leaves
-- behind (drop that one and run the migration again).
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently synthesis_jobs_voice_history_idx
  on public.synthesis_jobs (voice_id, created_at desc, id desc);
