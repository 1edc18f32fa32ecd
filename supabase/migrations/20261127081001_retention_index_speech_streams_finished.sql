-- A step of 20261127081000_retention, in a transaction of its own: the maintenance sweep removes speech streams past
-- their retention oldest first, a batch at a time; without this index each batch would scan the whole table
-- (built concurrently, which no transaction may hold: `voicegate migrate` and `supabase db push` run such a
-- statement on its own).

set lock_timeout = '4s';

-- Not IF NOT EXISTS, which would keep the invalid index a failed build leaves behind.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently speech_streams_finished_idx on public.speech_streams (finished_at) where finished_at is not null;
