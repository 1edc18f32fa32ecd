-- The launch gate closes when the reflection's voice is deleted (issue 47). Deleting a voice leaves its
-- reflection's active attempt as it was, ready and synced, so the gate stayed open on a voice its owner can no
-- longer see: the launch, a session's read and the reflection's speech then found no voice row to speak with and
-- answered 500, and a page that had started a session kept saying so. A deleted voice is now the one reason
-- that blocks (`voice_deleted`; its other reasons were about a voice that is gone), until a new clone makes the
-- reflection an active attempt on a live voice.
--
-- Read as the caller, RLS hides a deleted voice; read by the session trigger (SECURITY DEFINER), nothing does:
-- either way no live voice row joins.

set lock_timeout = '4s';

create or replace function public.voice_launch_readiness(p_reflection_id uuid)
returns table (reflection_id uuid, ready boolean, reasons text[])
language sql
stable
security invoker
set search_path = ''
as $$
  with r as (
    select r.id,
           a.id as attempt_id, a.status, a.runtime_status, a.preview_required,
           a.id is not null and v.id is null as voice_deleted
      from public.reflections r
      left join public.voice_clone_attempts a on a.reflection_id = r.id and a.is_active
      left join public.voices v on v.id = a.voice_id and v.deleted_at is null
     where r.id = p_reflection_id
  ), blocking as (
    select r.id,
           case when r.voice_deleted then array['voice_deleted']
                else array_remove(array[
                  case when r.attempt_id is null then 'no_voice' end,
                  case when r.attempt_id is not null and r.status <> 'ready' then 'clone_not_ready' end,
                  case when r.attempt_id is not null and r.runtime_status <> 'synced' then 'runtime_not_synced' end,
                  case when r.attempt_id is not null and r.preview_required is true then 'preview_required' end
                ], null) end as reasons
      from r
  )
  select id, cardinality(reasons) = 0, reasons from blocking
$$;
