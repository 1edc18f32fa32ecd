-- Voice manifests (issue 17): `voice-metadata/{owner}/{voice_id}.json`, written by the workers when a voice
-- becomes ready or changes provider and removed when the voice is deleted. The bucket comes from
-- supabase/config.toml. Owners may read their own voices' manifests; only the service writes them.
create policy voicegate_metadata_own_folder_select on storage.objects for select to authenticated
  using (bucket_id = 'voice-metadata' and (storage.foldername(name))[1] = (select auth.uid()::text));
