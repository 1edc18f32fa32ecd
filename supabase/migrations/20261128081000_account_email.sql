set lock_timeout = '4s';

-- An account's e-mail, for an operator's report (`voicegate ops usage` lists users by it, not by id alone). The
-- service cannot read auth.users, on Supabase as here; this reads the one column, for one id.
create function voicegate.account_email(p_id uuid) returns text
language sql
stable
security definer
set search_path = ''
as $$
  select u.email::text from auth.users u where u.id = p_id
$$;

revoke all on function voicegate.account_email(uuid) from public;
grant execute on function voicegate.account_email(uuid) to service_role;
