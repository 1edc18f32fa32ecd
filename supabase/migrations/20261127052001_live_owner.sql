set lock_timeout = '4s';

-- The service creating something for a caller whose user is soft-deleted (Supabase Auth's deleteUser with
-- shouldSoftDelete keeps the auth.users row, with `deleted_at`): the row satisfies every foreign key, so without
-- this the create went through for a user who is gone. Each create's count (backend/records/user_creates.sql)
-- calls it first: VG401, a 401, as a user transaction's opening answers (voicegate.require_user). The service's
-- alone: it names any user.
create function voicegate.require_owner(p_owner uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from auth.users u where u.id = p_owner and u.deleted_at is null) then
    raise exception using errcode = 'VG401', message = 'The account this token was issued for no longer exists.';
  end if;
end
$$;

revoke all on function voicegate.require_owner(uuid) from public;
grant execute on function voicegate.require_owner(uuid) to service_role;
