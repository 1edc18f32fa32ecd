-- name: signed_object
-- As the service. The object a signed download URL names, and whether it lies in the folder of a user who is being
-- erased (voicegate.object_fenced): refused then, from the moment the erasure is asked for.
select id, bucket_id, name, owner, owner_id, version, created_at, updated_at, last_accessed_at, metadata,
       user_metadata, voicegate.object_fenced(name) as fenced
  from storage.objects
 where bucket_id = %(bucket)s and name = %(name)s;

-- name: bucket_and_object
-- Whether the bucket exists and is public (`findBucket(id, 'id,public')` of getObjectInfo.ts), and the object as the
-- service sees it (its columns null when there is none), read as the service.
select b.public, o.id, o.bucket_id, o.name, o.owner, o.owner_id, o.version, o.created_at, o.updated_at,
       o.last_accessed_at, o.metadata, o.user_metadata
  from storage.buckets b
  left join storage.objects o on o.bucket_id = b.id and o.name = %(name)s
 where b.id = %(bucket)s;

-- name: visible_names
-- Which of these names the caller can see in the bucket (Storage's `findObjects`, under the caller's RLS).
select name from storage.objects where bucket_id = %(bucket)s and name = any(%(names)s::text[]);

-- name: public_bucket
-- Whether the bucket exists and is public (`findBucket(id, 'id,public', {isPublic: true})`), read as the service.
select id from storage.buckets where id = %(bucket)s and public;

-- name: move_object
-- Storage's `updateObject` of a move: the row renamed, owned by the mover, with a new version.
update storage.objects
   set bucket_id = %(dest_bucket)s, name = %(dest)s, owner_id = %(owner)s, version = %(version)s, updated_at = now()
 where bucket_id = %(bucket)s and name = %(name)s
returning id, bucket_id, name, owner, owner_id, version, created_at, updated_at, last_accessed_at, metadata,
          user_metadata;

-- name: delete_objects
-- What the caller may delete among the names (run as them, with `storage.allow_delete_query` set).
delete from storage.objects
 where bucket_id = %(bucket)s and name = any(%(names)s)
returning id, bucket_id, name, owner, owner_id, version, created_at, updated_at, last_accessed_at, metadata,
          user_metadata;
