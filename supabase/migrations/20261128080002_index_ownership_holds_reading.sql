-- In a transaction of its own: every consent recording asks whether it answers an asked hold (built concurrently,
-- which no transaction may hold: `voicegate migrate` and `supabase db push` run such a statement on its own).

set lock_timeout = '4s';

-- Not IF NOT EXISTS, which would keep the invalid index a failed build leaves behind.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently ownership_holds_reading_idx on voicegate.ownership_holds (reading_consent_id)
  where reading_consent_id is not null;
