-- name: expired_evidence
-- Spoken consents whose evidence's retention ended, oldest first.
select id
  from public.voice_consents
 where evidence_purged_at is null and evidence_expires_at <= now()
 order by evidence_expires_at
 limit %(limit)s;

-- name: purge_evidence
-- As the service.
-- One consent's evidence dropped (its recording's object removed in the same transaction), unless another purge
-- holds it or its retention was extended meanwhile (a sample stored under it).
with held as (
  select id, statement_sample_path
    from public.voice_consents
   where id = %(id)s and evidence_purged_at is null and evidence_expires_at <= now()
     for update skip locked
)
update public.voice_consents c
   set evidence_purged_at = now(), voiceprint = null, statement_sample_path = null
  from held
 where c.id = held.id
returning c.id, c.owner_id, held.statement_sample_path as recorded_path, c.evidence_expires_at;
