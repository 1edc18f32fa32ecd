-- name: search
-- Storage's list (src/storage/database/pg.ts `searchObjects`), run as the caller: RLS decides what it sees.
select * from storage.search(
  %(prefix)s, %(bucket)s, %(limit)s::int, %(levels)s::int, %(offset)s::int, %(search)s, %(column)s, %(order)s
);

-- name: visible_names
-- Which of these names the caller can see in the bucket (Storage's `findObjects`, under the caller's RLS).
select name from storage.objects where bucket_id = %(bucket)s and name = any(%(names)s::text[]);

-- name: list_buckets
-- Storage's `listBuckets` under the caller's RLS: `search` is a case-insensitive substring of the name (its
-- LIKE characters escaped by the caller), `column`/`order` an optional sort (no sort without a column),
-- `limit`/`offset` optional (null: all, from the first). Every bucket here is a STANDARD one.
select id, name, public, owner, created_at, updated_at, file_size_limit, allowed_mime_types,
       'STANDARD' as type
from storage.buckets
where %(search)s::text is null or name ilike '%%' || %(search)s || '%%'
order by
  case when %(order)s::text = 'asc' then case %(column)s::text when 'id' then id when 'name' then name end end asc,
  case when %(order)s::text = 'desc' then case %(column)s::text when 'id' then id when 'name' then name end end desc,
  case when %(order)s::text = 'asc' then
    case %(column)s::text when 'created_at' then created_at when 'updated_at' then updated_at end end asc,
  case when %(order)s::text = 'desc' then
    case %(column)s::text when 'created_at' then created_at when 'updated_at' then updated_at end end desc
limit %(limit)s::bigint offset %(offset)s::bigint;

-- name: find_bucket
-- Storage's `getBucket` (`findBucketById`) under the caller's RLS.
select id, name, owner, public, created_at, updated_at, file_size_limit, allowed_mime_types
from storage.buckets where id = %(bucket)s;

-- name: public_bucket
-- Whether the bucket exists and is public (`findBucket(id, 'id,public', {isPublic: true})`), read as the service.
select id from storage.buckets where id = %(bucket)s and public;

-- name: create_bucket
-- Storage's `createBucket`, run as the caller: a user's insert is refused by RLS (no policy on storage.buckets).
insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)
values (%(id)s, %(name)s, %(owner)s, %(owner_id)s, %(public)s, %(file_size_limit)s, %(allowed_mime_types)s)
returning id;

-- name: update_bucket
-- Storage's `updateBucket`, run as the caller: only the members asked for change; no row seen, no bucket.
update storage.buckets
   set public = case when %(set_public)s then %(public)s::boolean else public end,
       file_size_limit = case when %(set_limit)s then %(file_size_limit)s::bigint else file_size_limit end,
       allowed_mime_types = case when %(set_types)s then %(allowed_mime_types)s::text[] else allowed_mime_types end
 where id = %(bucket)s
returning id;

-- name: lock_bucket
-- Storage's `deleteBucket` first finds the bucket as superuser, locked, and counts its objects.
select id from storage.buckets where id = %(bucket)s for update;

-- name: bucket_has_objects
select 1 as found from storage.objects where bucket_id = %(bucket)s limit 1;

-- name: delete_bucket
-- Then deletes it as the caller (run with `storage.allow_delete_query` set, as Storage's request scope does).
delete from storage.buckets where id = %(bucket)s returning id;

-- name: empty_bucket
-- Storage's `emptyBucket` (service key only) deletes every object of the bucket.
delete from storage.objects where bucket_id = %(bucket)s returning name;

-- name: bucket_and_object
-- Whether the bucket exists and is public (`findBucket(id, 'id,public')` of getObjectInfo.ts), and the object as the
-- service sees it (its columns null when there is none), read as the service.
select b.public, o.id, o.bucket_id, o.name, o.owner, o.owner_id, o.version, o.created_at, o.updated_at,
       o.last_accessed_at, o.metadata, o.user_metadata
  from storage.buckets b
  left join storage.objects o on o.bucket_id = b.id and o.name = %(name)s
 where b.id = %(bucket)s;

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

-- name: signed_object
-- As the service. The object a signed download URL names, and whether it lies in the folder of a user who is being
-- erased (voicegate.object_fenced): refused then, from the moment the erasure is asked for.
select id, bucket_id, name, owner, owner_id, version, created_at, updated_at, last_accessed_at, metadata,
       user_metadata, voicegate.object_fenced(name) as fenced
  from storage.objects
 where bucket_id = %(bucket)s and name = %(name)s;
