-- name: insert_job
insert into public.synthesis_jobs (owner_id, voice_id, sample_id, attempt_id, input_text)
values (%(owner_id)s, %(voice_id)s, %(sample_id)s, %(attempt_id)s, %(text)s)
returning *;
