-- name: stored_sample
-- The newest enrollable sample of the voice: linked to it, or used by one of its attempts; not refused;
-- with its original, or its cleaned copy when a kept sample's original is gone.
select s.id
  from public.voice_samples s
 where (s.voice_id = %(voice_id)s
        or s.id in (select a.sample_id from public.voice_clone_attempts a
                     where a.voice_id = %(voice_id)s and a.sample_id is not null))
   and s.status <> 'failed'
   and (s.original_removed_at is null or s.processed_object_path is not null)
 order by s.created_at desc, s.id
 limit 1;

-- name: stored_set
-- The samples of the voice's newest set (its newest attempt made from several) that can still be
-- enrolled, as `stored_sample` judges one, in the set's order.
select s.id
  from public.voice_clone_attempt_samples m
  join public.voice_samples s on s.id = m.sample_id
 where m.attempt_id = (select a.id from public.voice_clone_attempts a
                        where a.voice_id = %(voice_id)s
                          and exists (select from public.voice_clone_attempt_samples x where x.attempt_id = a.id)
                        order by a.created_at desc, a.id desc
                        limit 1)
   and s.status <> 'failed'
   and (s.original_removed_at is null or s.processed_object_path is not null)
 order by m.position;

-- name: live_reference
select * from public.voice_provider_references
 where voice_id = %(voice_id)s and provider = %(provider)s and gone_at is null
 order by last_verified_at desc, created_at desc
 limit 1;

-- name: mark_gone
update public.voice_provider_references
   set gone_at = now(), gone_reason = %(reason)s
 where voice_id = %(voice_id)s and provider = %(provider)s and provider_voice_id = %(provider_voice_id)s
   and gone_at is null;

-- name: reflection_of
select reflection_id from public.voice_clone_attempts
 where voice_id = %(voice_id)s and is_active and reflection_id is not null
 order by created_at desc
 limit 1;

-- name: lock_voice
select id, owner_id, name, status, tts_provider, provider_voice_id, provider_target_model, deleted_at
  from public.voices
 where id = %(voice_id)s
   for update;

