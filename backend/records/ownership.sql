-- The voice ownership registry (voicegate.voice_prints) and its holds (voicegate.ownership_holds): the service's
-- alone, as every query here runs. Prints are compared by cosine through pgvector's HNSW index
-- (migrations 20261127080500_voice_ownership, 20261129043000_voice_prints_denser_graph).

-- name: search_settings
-- For this transaction's search: a wider candidate list than pgvector's default 40 (the recall bench/ownership.py
-- measures), and an iterative scan, so that the owner's own prints, which the search leaves out, never crowd out
-- the best print of another owner.
select set_config('hnsw.ef_search', '60', true), set_config('hnsw.iterative_scan', 'strict_order', true);

-- name: best_other
-- As the service.
-- The print of another owner nearest `print`, with its cosine (1 - cosine distance): the owner's own prints are
-- never compared.
select p.owner_id, p.consent_id, p.sample_id,
       1 - (p.embedding operator(extensions.<=>) %(print)s::extensions.vector) as score
  from voicegate.voice_prints p
 where p.owner_id <> %(owner_id)s
 order by p.embedding operator(extensions.<=>) %(print)s::extensions.vector
 limit 1;

-- name: register_consent
-- As the service.
-- A verified consent's print, with its owner.
insert into voicegate.voice_prints (owner_id, consent_id, embedding)
select c.owner_id, c.id, %(print)s::extensions.vector
  from public.voice_consents c
 where c.id = %(id)s
on conflict (consent_id) do update set embedding = excluded.embedding;

-- name: register_sample
-- As the service.
-- A ready sample's print, with its owner; a sample checked again (for another provider) keeps its newest print.
insert into voicegate.voice_prints (owner_id, sample_id, embedding)
select s.owner_id, s.id, %(print)s::extensions.vector
  from public.voice_samples s
 where s.id = %(id)s
on conflict (sample_id) do update set embedding = excluded.embedding;

-- name: forget_consent
-- As the service.
delete from voicegate.voice_prints where consent_id = %(id)s;

-- name: earlier
-- What became of this consent's or sample's earlier match, when it had one that matters to the next: released by an
-- operator or answered by a reading (its voice is not held again), or still asked (its question waits).
select (select h.state
          from voicegate.ownership_holds h
         where (h.consent_id = %(consent_id)s or h.sample_id = %(sample_id)s)
           and h.state in ('released', 'answered', 'asked')
         order by h.state = 'asked', h.created_at desc
         limit 1) as state;

-- name: open_hold
-- As the service.
-- A consent or sample put on hold (`held`), its uploader asked to read (`asked`), or refused at once (`refused`:
-- VOICEGATE_VOICE_OWNERSHIP=refuse, the policy its decider), with the print it matched.
insert into voicegate.ownership_holds (owner_id, consent_id, sample_id, matched_owner_id, matched_consent_id,
                                      matched_sample_id, score, threshold, state, decided_at, decided_by)
values (%(owner_id)s, %(consent_id)s, %(sample_id)s, %(matched_owner_id)s, %(matched_consent_id)s,
        %(matched_sample_id)s, %(score)s, %(threshold)s, %(state)s,
        case when %(state)s in ('held', 'asked') then null else now() end,
        case when %(state)s in ('held', 'asked') then null else %(decided_by)s end)
returning id;

-- name: ask_to_read
-- As the service.
-- The spoken consent whose reading answers the sample's asked hold: the newest phrase given for it.
update voicegate.ownership_holds
   set reading_consent_id = %(consent_id)s
 where sample_id = %(sample_id)s and state = 'asked';

-- name: question_for
-- As the service.
-- The asked hold a consent's reading answers, locked for the answer, with the print of the sample it is about.
select h.id, h.sample_id, s.voiceprint as sample_print, h.score
  from voicegate.ownership_holds h
  join public.voice_samples s on s.id = h.sample_id
 where h.reading_consent_id = %(consent_id)s and h.state = 'asked'
   for no key update of h;

-- name: answer
-- As the service.
-- An asked hold settled by its reading: `answered` or `refused` by the reading, or on to `held` for review.
update voicegate.ownership_holds
   set state = %(state)s,
       decided_at = case when %(state)s = 'held' then null else now() end,
       decided_by = case when %(state)s = 'held' then null else 'reading' end
 where id = %(id)s and state = 'asked';

-- name: release_sample_read
-- As the service.
-- A sample its speaker's reading answered: ready, as it was checked in full and its cleaned copy stored before it
-- was asked.
update public.voice_samples set status = 'ready' where id = %(id)s and status = 'awaiting_reading';

-- name: hold_asked_sample
-- As the service.
update public.voice_samples set status = 'held' where id = %(id)s and status = 'awaiting_reading';

-- name: refuse_asked_sample
-- As the service.
update public.voice_samples
   set status = 'failed', failure_reason = %(reason)s
 where id = %(id)s and status = 'awaiting_reading';

-- name: holds
-- The holds in `state` (every state when null), or the one `id` names, oldest first, after (`after_at`,
-- `after_id`) when given, with both accounts, and when a held consent's evidence (its recording and print) was
-- purged by retention.
select h.id, h.state, case when h.consent_id is null then 'sample' else 'consent' end as subject,
       coalesce(h.consent_id, h.sample_id) as subject_id, h.owner_id, h.matched_owner_id,
       case when h.matched_consent_id is null then 'sample' else 'consent' end as matched_subject,
       coalesce(h.matched_consent_id, h.matched_sample_id) as matched_subject_id,
       h.score, h.threshold, h.created_at, h.decided_at, h.decided_by, h.note, c.evidence_purged_at
  from voicegate.ownership_holds h
  left join public.voice_consents c on c.id = h.consent_id
 where (%(state)s::text is null or h.state = %(state)s)
   and (%(id)s::uuid is null or h.id = %(id)s)
   and (%(after_at)s::timestamptz is null or (h.created_at, h.id) > (%(after_at)s, %(after_id)s::uuid))
 order by h.created_at, h.id
 limit %(limit)s;

-- name: lock_hold
-- As the service.
-- One hold, locked for its decision.
select h.id, h.state, h.owner_id, h.consent_id, h.sample_id, h.score
  from voicegate.ownership_holds h
 where h.id = %(id)s
   for no key update;

-- name: decide_hold
-- As the service.
update voicegate.ownership_holds
   set state = %(state)s, decided_at = now(), decided_by = %(decided_by)s, note = %(note)s
 where id = %(id)s and state in ('held', 'asked');

-- name: release_consent
-- As the service.
-- A held consent released: verified from now; its print comes back to be registered (null once retention purged
-- its evidence: nothing joins the registry, and the consent covers no sample).
update public.voice_consents c
   set status = 'verified', verified_at = now()
 where c.id = %(id)s and c.status = 'held'
returning c.voiceprint;

-- name: refuse_consent
-- As the service.
update public.voice_consents c
   set status = 'rejected', refusal = 'ownership_refused'
 where c.id = %(id)s and c.status = 'held'
returning c.id;

-- name: release_sample
-- As the service.
-- A held sample released: it was checked in full, and its cleaned copy stored, before it was held.
update public.voice_samples s
   set status = 'ready'
 where s.id = %(id)s and s.status in ('held', 'awaiting_reading')
returning s.voiceprint;

-- name: refuse_sample
-- As the service.
update public.voice_samples s
   set status = 'failed', failure_reason = %(reason)s
 where s.id = %(id)s and s.status in ('held', 'awaiting_reading')
returning s.id;
