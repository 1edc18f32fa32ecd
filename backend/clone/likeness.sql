-- name: record_sample_print
-- As the service.
-- The mean voiceprint of the samples an enrolment sent, beside the provider voice it made (same transaction).
update public.voice_clone_attempts set sample_voiceprint = %(print)s where id = %(attempt_id)s;

-- name: sample_print
-- As the service.
-- The attempt's samples' print, and the language it enrolled the voice in (its first sample's, else the voice's),
-- which the probe is spoken in. voicegate.read_and_lease_attempts hands the same with each attempt it leases
-- (`likeness_probe`), for a run that has not enrolled since: keep the two alike.
select a.sample_voiceprint, coalesce(s.language, v.language) as language
  from public.voice_clone_attempts a
  left join public.voice_samples s on s.id = a.sample_id
  left join public.voices v on v.id = a.voice_id
 where a.id = %(attempt_id)s;

-- name: record_likeness
-- The attempt's likeness (or why it has none), once: the first judgement of its provider voice stands. The
-- reflection's mirror is rewritten when the attempt is its active one, and the voice's `updated_at` moves
-- so that a manifest writer that read the voice before this commits writes it again (backend/clone/manifest).
-- Not a transition: the attempt's version stays, so a worker fenced by it is not made stale by this.
with judged as (
  update public.voice_clone_attempts a
     set likeness = %(likeness)s, likeness_threshold = %(likeness_threshold)s,
         likeness_source = %(likeness_source)s, likeness_error = %(likeness_error)s,
         likeness_baseline = %(likeness_baseline)s
   where a.id = %(attempt_id)s and a.provider_voice_id = %(provider_voice_id)s
     and a.likeness is null and a.likeness_error is null
  returning a
), mirrored as (
  update public.reflections r
     set voice = voicegate.attempt_mirror(j.a)
    from judged j
   where (j.a).is_active and r.id = (j.a).reflection_id
), touched as (
  update public.voices v
     set updated_at = now()
    from judged j
   where (j.a).is_active and v.id = (j.a).voice_id and v.provider_voice_id = (j.a).provider_voice_id
)
select (j.a).id as attempt_id from judged j;

-- name: unjudged_for_render
-- As the service.
-- The ready attempt that made (or attached) the voice's current provider voice, when it has a samples' print
-- and no likeness yet: what a render in that voice can judge (VOICEGATE_LIKENESS_PROBE=off, or no probe sentence in
-- the voice's language).
select a.id, a.provider_voice_id, a.sample_voiceprint, coalesce(s.language, v.language) as language
  from public.voice_clone_attempts a
  left join public.voice_samples s on s.id = a.sample_id
  left join public.voices v on v.id = a.voice_id
 where a.voice_id = %(voice_id)s and a.provider = %(provider)s and a.provider_voice_id = %(provider_voice_id)s
   and a.status = 'ready' and a.likeness is null and a.likeness_error is null
 order by a.finished_at desc nulls last
 limit 1;

-- name: forget_judged_prints
-- As the service.
-- The samples' voiceprints of attempts that need them no more (their likeness judged, or they ended without being
-- ready), up to %(limit)s; one held by a transition is passed by, for the next sweep.
with done as (
  select id from public.voice_clone_attempts
   where sample_voiceprint is not null
     and (likeness is not null or likeness_error is not null or status in ('failed', 'canceled', 'superseded'))
   limit %(limit)s
     for update skip locked
)
update public.voice_clone_attempts a set sample_voiceprint = null from done where a.id = done.id;
