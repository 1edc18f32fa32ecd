"""Webhooks (issue 17): lifecycle events delivered as Standard Webhooks (standardwebhooks.com).

SQL triggers write each event to the `webhook_delivery` queue in the transaction of its state change
(supabase/migrations/*_webhooks.sql), one message per endpoint; the worker step (`worker`) signs and posts
it through `sender`, which refuses private addresses in production; users manage their endpoints through
`/v1/webhooks` (`service`, `routes`).
"""
