-- Files voicegate writes are voicegate's alone (issue 25, DESIGN.md §7). Users wrote anywhere in their own
-- folder of voicegate's buckets, so they could replace a render, a preview or a cleaned sample that
-- voicegate went on trusting. Now, in those buckets, users only read their own folder: the one file they
-- upload, a sample's original, goes through the signed upload URL the API makes with the service key, which
-- Storage writes as superuser. Everything else there is written by the service and recorded below.

set lock_timeout = '4s';

drop policy voicegate_objects_own_folder_insert on storage.objects;
drop policy voicegate_objects_own_folder_update on storage.objects;
drop policy voicegate_objects_own_folder_delete on storage.objects;
-- voicegate_objects_own_folder_select and voicegate_metadata_own_folder_select stay: owners read their folder.

-- Restrictive, so that no permissive policy of the project voicegate is installed in (a broad "authenticated
-- may upload" is common) reopens voicegate's buckets to writes by users.
create policy voicegate_objects_no_user_insert on storage.objects as restrictive for insert to anon, authenticated
  with check (bucket_id not in ('voice-samples', 'voice-previews', 'voice-renders', 'voice-metadata'));
create policy voicegate_objects_no_user_update on storage.objects as restrictive for update to anon, authenticated
  using (bucket_id not in ('voice-samples', 'voice-previews', 'voice-renders', 'voice-metadata'))
  with check (bucket_id not in ('voice-samples', 'voice-previews', 'voice-renders', 'voice-metadata'));
create policy voicegate_objects_no_user_delete on storage.objects as restrictive for delete to anon, authenticated
  using (bucket_id not in ('voice-samples', 'voice-previews', 'voice-renders', 'voice-metadata'));

-- The SHA-256 and size of every object the service writes and later reads or serves, recorded in the
-- transaction that commits the row pointing at it (backend/storage/integrity.py). Only the service
-- touches it: no grant to the API roles, TRUNCATE included.
create table voicegate.service_written_objects (
  bucket_id text not null,
  name text not null,
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes bigint not null check (size_bytes >= 0),
  written_at timestamptz not null default now(),
  primary key (bucket_id, name)
);
alter table voicegate.service_written_objects enable row level security;
revoke all on voicegate.service_written_objects from public, anon, authenticated;
grant select, insert, update, delete on voicegate.service_written_objects to service_role;

-- Cleaned copies made before now have no record, and their owners could have replaced them: forget which
-- provider they were made for, so the next enrolment makes them again from the original, checked anew.
update public.voice_samples set processed_provider = null where processed_object_path is not null;
