-- A voice's name is how its owner tells it from their others (the page lists, chooses and renames voices by
-- name; issue 47): two live voices of one owner may no longer share one, compared as the page compares them,
-- without case or outer spaces. A deleted voice's name is free again.
--
-- A deployed database may hold such duplicates already: the oldest voice of each keeps its name and every later
-- one takes the first free "name (2)", "name (3)"…, as the page and the API name a voice whose name is taken. A
-- partial index that left today's rows out was the other way; it would keep those duplicates for good (and make
-- "is this name free?" depend on a voice's age), where renaming settles them once, visibly, in words the page
-- already uses.
--
-- The renaming and the index go in this one transaction, under a lock that holds back writes to voices (reads
-- go on) from before the first is read to the commit: a duplicate made between the renaming and a concurrent
-- build would fail that build and leave an invalid index behind. Voices are one row per voice a person made,
-- so the build takes milliseconds; lock_timeout keeps a busy table from being waited on for long.

set lock_timeout = '4s';

lock table public.voices in share row exclusive mode;

do $$
declare
  dup record;
  n int;
  candidate text;
begin
  for dup in
    select ranked.id, ranked.owner_id, btrim(ranked.name) as name
      from (
        select v.id, v.owner_id, v.name, v.created_at,
               row_number() over (partition by v.owner_id, lower(btrim(v.name)) order by v.created_at, v.id) as nth
          from public.voices v
         where v.deleted_at is null
      ) ranked
     where ranked.nth > 1
     order by ranked.owner_id, ranked.created_at, ranked.id
  loop
    n := 2;
    loop
      -- Cut to fit the 200 characters a name may have, the suffix included.
      candidate := rtrim(left(dup.name, 200 - length(format(' (%s)', n)))) || format(' (%s)', n);
      exit when not exists (
        select 1 from public.voices v
         where v.owner_id = dup.owner_id and v.deleted_at is null and lower(btrim(v.name)) = lower(candidate)
      );
      n := n + 1;
    end loop;
    update public.voices set name = candidate where id = dup.id;
  end loop;
end
$$;

-- squawk-ignore require-concurrent-index-creation -- built under the lock above, as said at the top
create unique index voices_owner_name_uidx on public.voices (owner_id, lower(btrim(name))) where deleted_at is null;
