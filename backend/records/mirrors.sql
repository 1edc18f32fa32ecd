-- name: count_reflections
select count(*) as n from public.reflections;

-- name: mirror_batch
-- One batch of reflections in id order after the cursor, each with how its mirror differs from its
-- active attempt (`drift`, empty when it agrees). A reflection without an active attempt should
-- show no clone at all; if its mirror names one, that is drift the lifecycle cannot rewrite.
select r.id as reflection_id, a.id as attempt_id, a.status,
       case when a.id is not null then voicegate.mirror_drift(r.voice, r.voice_id, a)
            when r.voice ->> 'attemptId' is not null or coalesce(r.voice ->> 'cloneStatus', 'none') <> 'none'
              then array['no_active_attempt']
            else '{}'::text[] end as drift
  from public.reflections r
  left join public.voice_clone_attempts a on a.reflection_id = r.id and a.is_active
 where r.id > coalesce(%(after)s::uuid, '00000000-0000-0000-0000-000000000000')
 order by r.id
 limit %(limit)s;

-- name: repair
select outcome, attempt_id, drift from voicegate.repair_voice_mirror(%(reflection_id)s, %(actor)s, %(detail)s::jsonb);
