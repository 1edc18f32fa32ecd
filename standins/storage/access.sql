-- name: find_object
-- An object's row, as whoever runs it sees it: under the caller's RLS, or as the service.
select id, bucket_id, name, owner, owner_id, version, created_at, updated_at, last_accessed_at, metadata,
       user_metadata
  from storage.objects
 where bucket_id = %(bucket)s and name = %(name)s;
