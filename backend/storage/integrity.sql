-- name: record
-- Upserting locks the record: two writers of one object take turns until the first commits.
insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes)
values (%(bucket)s, %(name)s, %(sha256)s, %(size)s)
on conflict (bucket_id, name) do update
   set sha256 = excluded.sha256, size_bytes = excluded.size_bytes, written_at = now();

-- name: recorded
select sha256, size_bytes from voicegate.service_written_objects where bucket_id = %(bucket)s and name = %(name)s;

-- name: forget
delete from voicegate.service_written_objects where bucket_id = %(bucket)s and name = any(%(names)s::text[]);
