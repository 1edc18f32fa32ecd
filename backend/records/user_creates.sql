-- name: take
-- As the service; the bucket stays locked until the caller's transaction ends. `wait` is null when taken.
select voicegate.take_create(%(owner_id)s, %(kind)s, %(creates)s, %(window_seconds)s) as wait;
