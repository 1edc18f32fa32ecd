-- name: job_row
select * from public.synthesis_jobs where id = %(id)s;
