-- name: phrases_with_codes
-- As the service.
-- Every account's spoken consents whose code is one of `codes` that still take a recording (`open`), or were made
-- in the last `recent_seconds` (`recent`, which an open one is too): what a text about to be spoken is compared with.
select c.id, c.owner_id, c.phrase, c.code, s.open, s.open or c.created_at > now() - make_interval(secs => %(recent_seconds)s) as recent
  from public.voice_consents c
 cross join lateral (
   select public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at)
          in ('awaiting_recording', 'rejected') as open
 ) s
 where c.kind = 'spoken'
   and c.code = any(%(codes)s::text[])
   and (c.expires_at > now() or c.created_at > now() - make_interval(secs => %(recent_seconds)s));

-- name: withdraw_phrase
-- As the service.
-- A phrase voicegate was asked to speak in another account's voice lapses now: its consent reads `expired`, and no
-- recording of it is taken (the audio made verifies nothing).
update public.voice_consents c
   set expires_at = now()
 where c.id = %(id)s
   and public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at)
       in ('awaiting_recording', 'rejected')
returning c.id;
