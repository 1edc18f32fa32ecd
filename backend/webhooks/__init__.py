"""Webhooks: lifecycle events delivered as Standard Webhooks (standardwebhooks.com).

SQL triggers write each event to the `webhook_delivery` queue in the transaction of its state change
(supabase/migrations/*_webhooks_and_voice_metadata.sql), one message per endpoint; the worker step
(`step`) signs and posts it through `backend.standard_webhooks`, whose sender refuses private addresses
for users' endpoints in production; users manage their endpoints through `/v1/webhooks` (`service`, what it takes
and answers in `types`, its routes in `backend.http.routes.webhooks`).
"""
