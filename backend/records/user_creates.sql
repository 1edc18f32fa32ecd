-- name: take
-- As the service; the bucket stays locked until the caller's transaction ends. `wait` is null when taken.
-- The owner first: a user who is gone (deleted, or soft-deleted) creates nothing (VG401, a 401).
select voicegate.require_owner(%(owner_id)s),
       voicegate.take_create(%(owner_id)s, %(kind)s, %(creates)s, %(window_seconds)s) as wait;
