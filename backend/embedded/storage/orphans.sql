-- name: stored_names
-- Which of these names have an object row in the bucket.
select name from storage.objects where bucket_id = %(bucket)s and name = any(%(names)s::text[]);

-- name: record_audit
select voicegate.record_audit(%(actor)s, %(action)s, %(subject_type)s, %(subject_id)s, %(detail)s::jsonb) as id;
