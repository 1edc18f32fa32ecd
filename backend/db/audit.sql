-- name: record_audit
select voicegate.record_audit(%(actor)s, %(action)s, %(subject_type)s, %(subject_id)s, %(detail)s::jsonb) as id;
