-- name: record
-- Upserting locks the record: two writers of one object take turns until the first commits.
insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes)
values (%(bucket)s, %(name)s, %(sha256)s, %(size)s)
on conflict (bucket_id, name) do update
   set sha256 = excluded.sha256, size_bytes = excluded.size_bytes, written_at = now();

-- name: recorded
-- The object's record (`written` true), then the writes announced for it and not yet ended.
select sha256, size_bytes, true as written
  from voicegate.service_written_objects where bucket_id = %(bucket)s and name = %(name)s
union all
select sha256, size_bytes, false
  from voicegate.service_object_writes where bucket_id = %(bucket)s and name = %(name)s;

-- name: announce
-- Writes announced, one row each, in the order given: their ids, ascending, are theirs in that order (a
-- statement takes its identity values in the order it inserts its rows). One statement for the writes a
-- worker's attempts announce together.
with announced as (
  insert into voicegate.service_object_writes (bucket_id, name, sha256, size_bytes)
  select w.bucket, w.name, w.sha256, w.size
    from unnest(%(buckets)s::text[], %(names)s::text[], %(sha256s)s::text[], %(sizes)s::bigint[])
         with ordinality as w(bucket, name, sha256, size, n)
   order by w.n
  returning id
)
select id from announced order by id;

-- name: forget
delete from voicegate.service_written_objects where bucket_id = %(bucket)s and name = any(%(names)s::text[]);
