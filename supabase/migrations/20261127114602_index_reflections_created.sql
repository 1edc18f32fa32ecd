-- In a transaction of its own: `voicegate ops status` reads the oldest row of public.reflections, which without an
-- index on its creation time would read the whole table (built concurrently, which no transaction may hold:
-- `voicegate migrate` and `supabase db push` run such a statement on its own).

set lock_timeout = '4s';

-- Not IF NOT EXISTS, which would keep the invalid index a failed build leaves behind.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently reflections_created_idx on public.reflections (created_at);
