-- name: orphan_objects
-- Objects in voicegate's buckets that no row claims and nobody wrote since `written_before`, by
-- (bucket, name) after the cursor; with `id`, just that object if it still is one. The paths spelled
-- here are those of backend/storage/paths.py; a test checks that they agree.
select o.id, o.bucket_id, o.name, (o.metadata ->> 'size')::bigint as size_bytes,
       coalesce(o.updated_at, o.created_at) as written_at
  from storage.objects o
 where o.bucket_id = any(%(buckets)s::text[])
   and coalesce(o.updated_at, o.created_at) < %(written_before)s
   and (%(id)s::uuid is null or o.id = %(id)s::uuid)
   and (o.bucket_id, o.name) > (coalesce(%(after_bucket)s::text, ''), coalesce(%(after_name)s::text, ''))
   -- A sample's original, and its processed copy (recorded, or written beside the original first).
   and not exists (select 1 from public.voice_samples s
                    where s.bucket_id = o.bucket_id and s.object_path = o.name)
   and not exists (select 1 from public.voice_samples s
                    where s.bucket_id = o.bucket_id and s.processed_object_path = o.name)
   and not exists (select 1 from public.voice_samples s
                    where s.bucket_id = o.bucket_id
                      and regexp_replace(s.object_path, '[^/]*$', 'processed.wav') = o.name)
   -- The upload of a draft voice, awaiting its finalize (a deleted draft's awaits nothing).
   and not exists (select 1 from public.voices v
                    where o.bucket_id = %(samples_bucket)s and v.status = 'draft' and v.deleted_at is null
                      and v.owner_id::text || '/' || v.id::text || '/original' = o.name)
   -- A spoken consent's recording, kept as its evidence until purged.
   and not exists (select 1 from public.voice_consents c
                    where o.bucket_id = %(samples_bucket)s and c.statement_sample_path = o.name)
   -- An attempt's preview.
   and not exists (select 1 from public.voice_clone_attempts a
                    where o.bucket_id = %(previews_bucket)s
                      and a.owner_id::text || '/' || a.id::text || '/preview.wav' = o.name)
   -- A synthesis job's audio, recorded or still to be.
   and not exists (select 1 from public.synthesis_jobs j
                    where o.bucket_id = %(renders_bucket)s
                      and (j.output_object_path = o.name
                           or j.owner_id::text || '/renders/' || j.id::text || '.wav' = o.name))
 order by o.bucket_id, o.name
 limit %(limit)s;

