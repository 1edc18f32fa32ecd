-- name: read_voices
-- For each of a JSON array's items ({n, voice_id}; `Database.grouped`), its voice, the voice's consent, and the
-- sample its provider voice was cloned from and its likeness (those of the latest ready attempt that made or
-- attached it), named as the manifest names them, by `n` (none for a voice that is gone). Read without a lock: the
-- upload that follows holds nothing, and `confirm` checks afterwards that the voice is still as read here.
select i.n, v.id as voice_id, v.owner_id, v.tts_provider as provider, v.provider_voice_id,
       v.provider_target_model as target_model,
       v.created_at, v.updated_at, v.deleted_at, v.consent_id, c.consent_text_version as consent_version,
       s.id as sample_id, s.quality_report ->> 'verdict' as sample_verdict,
       a.likeness, a.likeness_threshold, a.likeness_source, a.likeness_error, a.likeness_baseline
  from jsonb_to_recordset(%(items)s::jsonb) as i(n int, voice_id uuid)
  join public.voices v on v.id = i.voice_id
  left join public.voice_consents c on c.id = v.consent_id
  left join lateral (
    select a.sample_id, a.likeness, a.likeness_threshold, a.likeness_source, a.likeness_error, a.likeness_baseline
      from public.voice_clone_attempts a
     where a.voice_id = v.id and a.provider = v.tts_provider and a.provider_voice_id = v.provider_voice_id
       and a.status = 'ready'
     order by a.finished_at desc nulls last, a.created_at desc
     limit 1
  ) a on true
  left join public.voice_samples s on s.id = a.sample_id;

-- name: confirm
-- After the uploads: for each of a JSON array's items ({n, voice_id, updated_at, bucket, name, sha256, size,
-- writes, lifetime}: one writer's; `Database.grouped`), record the file's digest (as backend/storage/integrity.sql's `record`
-- does) and end the writer's announced writes, with any announced longer ago than an upload can last, only if
-- its voice is live and unchanged since it was read; each item's `confirmed`, by `n`. One statement for the
-- writers that confirm together (`Database.grouped`); two writers of one object cannot share it (an upsert
-- touches a row once), and confirm alone. The voices are locked `for share` until this statement commits: an
-- update of a voice that commits first is seen (the row no longer matches), one that comes later waits for that
-- commit and commits after the record, so its own manifest write comes after this one.
with item as (
  select *
    from jsonb_to_recordset(%(items)s::jsonb)
      as i(n int, voice_id uuid, updated_at timestamptz, bucket text, name text, sha256 text, size bigint,
           writes bigint[], lifetime float8)
), live as (
  select i.n
    from item i
    join public.voices v on v.id = i.voice_id and v.updated_at = i.updated_at and v.deleted_at is null
     for share of v
), recorded as (
  insert into voicegate.service_written_objects (bucket_id, name, sha256, size_bytes)
  select i.bucket, i.name, i.sha256, i.size from item i join live l on l.n = i.n
  on conflict (bucket_id, name) do update
     set sha256 = excluded.sha256, size_bytes = excluded.size_bytes, written_at = now(), checked_version = null,
         altered_version = null
), ended as (
  delete from voicegate.service_object_writes w
   using item i join live l on l.n = i.n
   where w.bucket_id = i.bucket and w.name = i.name
     and (w.id = any(i.writes) or w.started_at < now() - make_interval(secs => i.lifetime))
)
select i.n, exists (select from live l where l.n = i.n) as confirmed from item i order by i.n;

-- name: forget
-- After the object's removal: forget its record and end this remover's announced writes, with any announced
-- longer ago than an upload can last, if the voice is to have no manifest: gone, deleted, or live without a
-- provider voice and unchanged since it was read (locked `for share` for this statement, as in `confirm`).
with voice as (
  select v.deleted_at is not null or (v.updated_at = %(updated_at)s and v.provider_voice_id is null) as absent
    from public.voices v
   where v.id = %(voice_id)s
     for share
), settled as (
  select coalesce((select absent from voice), true) as absent
), forgotten as (
  delete from voicegate.service_written_objects
   where (select absent from settled) and bucket_id = %(bucket)s and name = %(name)s
), ended as (
  delete from voicegate.service_object_writes w
   where (select absent from settled)
     and w.bucket_id = %(bucket)s and w.name = %(name)s
     and (w.id = any(%(writes)s::bigint[]) or w.started_at < now() - make_interval(secs => %(lifetime)s))
)
select absent as confirmed from settled;

-- name: unsettled
-- Manifests to settle: a write announced longer ago than an upload can last (its writer died, or gave up
-- an upload whose outcome it could not know), or a record of a voice that is deleted or gone (its deletion
-- could not reach Storage). Each as the owner and voice its path names (only the service writes there). The
-- announced writes are few (only those under way); of the records, one per voice, only a page is read: the
-- %(limit)s after %(after)s by name, along the primary key. One row at least, with where the page ended and how
-- many records it read (the owner and voice null when nothing is to settle).
with page as materialized (
  select r.name from voicegate.service_written_objects r
   where r.bucket_id = %(bucket)s and r.name > %(after)s
   order by r.name
   limit %(limit)s
), named as materialized (  -- the casts only for the names the pattern admits
  select o.name, split_part(o.name, '/', 1)::uuid as owner_id,
         substr(split_part(o.name, '/', 2), 1, 36)::uuid as voice_id
    from (select w.name from voicegate.service_object_writes w
           where w.bucket_id = %(bucket)s and w.started_at < now() - make_interval(secs => %(lifetime)s)
          union
          select p.name from page p) o
   where o.name ~ '^[0-9a-f-]{36}/[0-9a-f-]{36}\.json$'
)
select e.page_end, e.page_rows, u.owner_id, u.voice_id
  from (select max(p.name) as page_end, count(*) as page_rows from page p) e
  left join lateral (
    select n.owner_id, n.voice_id
      from named n
      left join public.voices v on v.id = n.voice_id
     where v.deleted_at is not null or v.id is null
        or exists (select from voicegate.service_object_writes w
                    where w.bucket_id = %(bucket)s and w.name = n.name
                      and w.started_at < now() - make_interval(secs => %(lifetime)s))
     limit %(limit)s
  ) u on true;
