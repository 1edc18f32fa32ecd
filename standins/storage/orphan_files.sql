-- name: stored_names
-- Which of these names have an object row in the bucket.
select name from storage.objects where bucket_id = %(bucket)s and name = any(%(names)s::text[]);

