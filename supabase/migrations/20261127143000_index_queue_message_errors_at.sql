-- In a transaction of its own: the retention sweep removes voicegate.queue_message_errors past their bound oldest
-- first, and `voicegate ops status` reads its oldest row; without an index on the error's time either reads the
-- whole table, which a burst of failed deliveries makes large (built concurrently, which no transaction may hold:
-- `voicegate migrate` and `supabase db push` run such a statement on its own).

set lock_timeout = '4s';

-- Not IF NOT EXISTS, which would keep the invalid index a failed build leaves behind.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently queue_message_errors_at_idx on voicegate.queue_message_errors (at);
