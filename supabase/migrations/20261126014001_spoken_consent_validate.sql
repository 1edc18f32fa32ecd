-- The second step of 20261126014000_spoken_consent, in a transaction of its own: validating a constraint scans
-- the table under a lock that lets reads and writes go on, and the index is built concurrently, which no
-- transaction may hold (`voicegate migrate` and `supabase db push` run such a statement on its own).

set lock_timeout = '4s';

alter table public.voice_consents validate constraint voice_consents_kind_status;
alter table public.voice_consents validate constraint voice_consents_verified_has_evidence;

-- The purge finds the evidence whose retention ended. Run on its own, outside the transaction; not IF NOT
-- EXISTS, which would keep the invalid index a failed build leaves behind.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently voice_consents_evidence_expiry_idx on public.voice_consents (evidence_expires_at)
  where evidence_purged_at is null and evidence_expires_at is not null;
