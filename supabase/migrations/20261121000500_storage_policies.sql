-- Storage: each user works only inside `{auth.uid()}/...` of voicegate's buckets (DESIGN.md §7).
-- The buckets themselves come from supabase/config.toml (`supabase seed buckets`, or `voicegate migrate`).

set lock_timeout = '4s';

create policy voicegate_objects_own_folder_select on storage.objects for select to authenticated
  using (bucket_id in ('voice-samples', 'voice-previews', 'voice-renders')
         and (storage.foldername(name))[1] = (select auth.uid()::text));
create policy voicegate_objects_own_folder_insert on storage.objects for insert to authenticated
  with check (bucket_id in ('voice-samples', 'voice-previews', 'voice-renders')
              and (storage.foldername(name))[1] = (select auth.uid()::text));
create policy voicegate_objects_own_folder_update on storage.objects for update to authenticated
  using (bucket_id in ('voice-samples', 'voice-previews', 'voice-renders')
         and (storage.foldername(name))[1] = (select auth.uid()::text))
  with check (bucket_id in ('voice-samples', 'voice-previews', 'voice-renders')
              and (storage.foldername(name))[1] = (select auth.uid()::text));
create policy voicegate_objects_own_folder_delete on storage.objects for delete to authenticated
  using (bucket_id in ('voice-samples', 'voice-previews', 'voice-renders')
         and (storage.foldername(name))[1] = (select auth.uid()::text));
