-- name: account
-- As the caller: the unit's opening checks that their account is still there (voicegate.require_user, VG401).
select 1;
