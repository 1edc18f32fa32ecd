-- name: search
-- Storage's list (src/storage/database/pg.ts `searchObjects`), run as the caller: RLS decides what it sees.
select * from storage.search(
  %(prefix)s, %(bucket)s, %(limit)s::int, %(levels)s::int, %(offset)s::int, %(search)s, %(column)s, %(order)s
);

-- name: list_v2
-- Storage's `listObjectsV2` without a delimiter (src/storage/database/pg.ts), run as the caller: every object
-- under the prefix (`pattern`: the prefix, its LIKE characters escaped, as a LIKE pattern), ordered by `column` (null: the name alone)
-- and then the name bytewise, in `order`. A cursor starts after `start_after`, and when the listing is by a
-- timestamp, after `after` at that timestamp (to the millisecond, as Storage compares them).
select id, name, metadata, updated_at, created_at, last_accessed_at
from storage.objects
where bucket_id = %(bucket)s
  and name like %(pattern)s
  and (
    %(start_after)s::text is null
    or (%(column)s::text is not null and %(after)s::text is not null and case
      when %(order)s::text = 'asc' then
        row(date_trunc('milliseconds', case %(column)s::text when 'created_at' then created_at else updated_at end),
            name collate "C")
        > row(coalesce(nullif(%(after)s::text, '')::timestamptz, 'epoch'::timestamptz), %(start_after)s::text)
      else
        row(date_trunc('milliseconds', case %(column)s::text when 'created_at' then created_at else updated_at end),
            name collate "C")
        < row(coalesce(nullif(%(after)s::text, '')::timestamptz, 'epoch'::timestamptz), %(start_after)s::text)
      end)
    or ((%(column)s::text is null or %(after)s::text is null) and case
      when %(order)s::text = 'asc' then name collate "C" > %(start_after)s::text
      else name collate "C" < %(start_after)s::text
      end)
  )
order by
  case when %(order)s::text = 'asc' then
    case %(column)s::text when 'created_at' then created_at when 'updated_at' then updated_at end end asc,
  case when %(order)s::text = 'desc' then
    case %(column)s::text when 'created_at' then created_at when 'updated_at' then updated_at end end desc,
  case when %(order)s::text = 'asc' then name collate "C" end asc,
  case when %(order)s::text = 'desc' then name collate "C" end desc
limit %(limit)s::int;

-- name: search_v2
-- Storage's `listObjectsV2` with the `/` delimiter: one level under the prefix, folders and objects, through
-- Storage's own `storage.search_v2` (supabase/local/03_storage_search.sql), run as the caller.
select * from storage.search_v2(
  %(prefix)s, %(bucket)s, %(limit)s::int, %(levels)s::int, %(start_after)s, %(order)s, %(column)s, %(after)s
);
