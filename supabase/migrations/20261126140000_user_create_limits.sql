-- What one user may create (docs/limits.md). Nothing bounded it: a script made 7,600 spoken consents in 31 s,
-- and the cap on webhook endpoints was counted, then written, with nothing between, so 32 creates at once
-- stored up to 18 of 10. Each API process is stateless, so the bound lives here, where every process meets it.
--
-- One row per user and kind of create: a token bucket of VOICEGATE_USER_CREATES that refills as many per
-- VOICEGATE_USER_CREATE_WINDOW (the API passes both, so the settings stay the API's). Taking a token is one
-- upsert, which also row-locks the bucket until the create's transaction ends: two creates of one kind by one
-- user go one after the other, in any number of processes, so what the create counts next (its open consents,
-- drafts or endpoints) no concurrent create of the same kind changes before it commits. Other users' buckets
-- are other rows, never waited for.

set lock_timeout = '4s';

create table voicegate.user_creates (
  owner_id uuid not null references auth.users (id) on delete cascade,
  kind text not null check (kind in ('consent', 'reflection', 'voice', 'webhook_endpoint')),
  -- Creates left, as of `counted_at`; a fraction is a token on its way back.
  tokens double precision not null,
  -- When `tokens` was last counted: a test moves it back to let the window pass.
  counted_at timestamptz not null,
  primary key (owner_id, kind)
);

-- The service's alone: a user who could write it could lift their own limits, or truncate everyone's.
alter table voicegate.user_creates enable row level security;
revoke all on voicegate.user_creates from public, anon, authenticated;
grant select, insert, update on voicegate.user_creates to service_role;

-- Take one of `p_owner_id`'s creates of `p_kind` from a bucket of `p_creates` that refills as many per
-- `p_window_seconds`, and hold the bucket's row lock until the caller's transaction ends. Null when taken;
-- else the seconds until one is back, and nothing written. clock_timestamp(), not now(): a create that waited
-- for the lock began before the one it waited for counted, and must not count time that one already did.
create function voicegate.take_create(p_owner_id uuid, p_kind text, p_creates integer, p_window_seconds double precision)
  returns double precision
  language plpgsql
  set search_path = ''
as $$
declare
  per_second constant double precision := p_creates / p_window_seconds;
  short double precision;
begin
  insert into voicegate.user_creates as b (owner_id, kind, tokens, counted_at)
  values (p_owner_id, p_kind, p_creates - 1, clock_timestamp())
  on conflict (owner_id, kind) do update
     set tokens = least(p_creates, b.tokens + per_second
                        * greatest(0, extract(epoch from clock_timestamp() - b.counted_at))) - 1,
         counted_at = greatest(b.counted_at, clock_timestamp())
   where least(p_creates, b.tokens + per_second
               * greatest(0, extract(epoch from clock_timestamp() - b.counted_at))) >= 1;
  if found then
    return null;
  end if;
  -- Refused: the row is still locked (ON CONFLICT locks it whatever its WHERE says), so this reads it as is.
  select 1 - least(p_creates, b.tokens + per_second * greatest(0, extract(epoch from clock_timestamp() - b.counted_at)))
    into short
    from voicegate.user_creates b
   where b.owner_id = p_owner_id and b.kind = p_kind;
  return short / per_second;
end
$$;

revoke all on function voicegate.take_create(uuid, text, integer, double precision) from public;
grant execute on function voicegate.take_create(uuid, text, integer, double precision) to service_role;
