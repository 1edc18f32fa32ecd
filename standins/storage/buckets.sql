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
