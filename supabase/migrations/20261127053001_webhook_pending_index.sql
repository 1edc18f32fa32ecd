-- The second step of 20261127053000_webhook_pending_bound, in a transaction of its own: each event counts its
-- endpoint's deliveries in `webhook_delivery` and, when they reach the bound, finds the oldest; without this
-- index both would scan the whole queue (built
-- concurrently, which no transaction may hold: `voicegate migrate` and `supabase db push` run such a
-- statement on its own).

set lock_timeout = '4s';

-- Not IF NOT EXISTS, which would keep the invalid index a failed build leaves behind.
-- squawk-ignore ban-concurrent-index-creation-in-transaction, prefer-robust-stmts -- as said just above
create index concurrently q_webhook_delivery_endpoint_idx on pgmq.q_webhook_delivery ((message ->> 'endpointId'), msg_id);
