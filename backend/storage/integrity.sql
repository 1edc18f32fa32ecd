-- name: record
-- Upserting locks the record: two writers of one object take turns until the first commits.
insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes)
values (%(bucket)s, %(name)s, %(sha256)s, %(size)s)
on conflict (bucket_id, name) do update
   set sha256 = excluded.sha256, size_bytes = excluded.size_bytes, written_at = now(), checked_version = null,
       altered_version = null
returning written_at;

-- name: checked
-- Storage's version of the object whose bytes matched its record, unless the record changed meanwhile.
update voicegate.service_written_objects
   set checked_version = %(version)s, altered_version = null
 where bucket_id = %(bucket)s and name = %(name)s and written_at = %(written_at)s;

-- name: altered
-- Storage's version of the object whose bytes did not match its record, unless the record changed meanwhile.
update voicegate.service_written_objects
   set altered_version = %(version)s
 where bucket_id = %(bucket)s and name = %(name)s and written_at = %(written_at)s;

-- name: recorded
-- The object's record (`written` true) with the versions Storage reported when its bytes were last checked, then
-- the writes announced for it and not yet ended.
select sha256, size_bytes, true as written, written_at, checked_version, altered_version
  from voicegate.service_written_objects where bucket_id = %(bucket)s and name = %(name)s
union all
select sha256, size_bytes, false, null, null, null
  from voicegate.service_object_writes where bucket_id = %(bucket)s and name = %(name)s;

-- name: announce
-- A write announced for each of a JSON array's items ({n, bucket, name, sha256, size}; `Database.grouped`): its
-- id, by `n`. The rows are inserted in the items' order, and a statement takes its identity values in the order it
-- inserts its rows, so the ids, ascending, are the items' in that order.
with item as (
  select * from jsonb_to_recordset(%(items)s::jsonb) as i(n int, bucket text, name text, sha256 text, size bigint)
), announced as (
  insert into voicegate.service_object_writes (bucket_id, name, sha256, size_bytes)
  select i.bucket, i.name, i.sha256, i.size from item i order by i.n
  returning id
)
select i.n, a.id
  from (select n, row_number() over (order by n) as k from item) i
  join (select id, row_number() over (order by id) as k from announced) a using (k);

-- name: forget
delete from voicegate.service_written_objects where bucket_id = %(bucket)s and name = any(%(names)s::text[]);
