-- name: require_owner
-- As the service acting for a caller: VG401 (a 401) when the caller's account is gone (deleted, or soft-deleted).
-- Sent first in the unit's pipeline, so that nothing after it runs for an account that is gone.
select voicegate.require_owner(%(owner_id)s);
