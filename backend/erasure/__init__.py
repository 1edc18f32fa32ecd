"""Erasure: a user who is erased takes everything with them.

Deleting the user's `auth.users` row (Supabase Auth's admin deleteUser, or `voicegate ops erase-user --apply`,
which deletes it the same way) starts it: a trigger (`voicegate.erase_deleted_user`, made by the migration
`20261127052000_user_erasure`) snapshots what lives outside Postgres into an erasure and its items and queues
`user_erasure`, and the cascade removes the user's rows. The worker step (`step`) deletes each provider voice at
its provider and each object in Storage (confirmed gone by reading it back), erases what the cascade leaves, and
closes the erasure with a receipt and an audit tombstone; `receipts` reads them for operators.
"""
