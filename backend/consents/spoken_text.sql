-- name: phrases_with_codes
-- As the service.
-- The spoken consents whose code is one of `codes` that a text about to be spoken for `owner_id` is compared with:
-- every account's that still take a recording (`open`), and the owner's made in the last `recent_seconds` (`recent`,
-- which an open one is too). Another account's that takes no recording is nothing to the text: left out here, a
-- text that says every code is compared with the open phrases, not with every phrase made in a day.
select c.id, c.owner_id, c.phrase, c.code, s.open, s.open or c.created_at > now() - make_interval(secs => %(recent_seconds)s) as recent
  from public.voice_consents c
 cross join lateral (
   select public.voice_consent_state(c.kind, c.status, c.expires_at, c.evidence_purged_at)
          in ('awaiting_recording', 'rejected') as open
 ) s
 where c.kind = 'spoken'
   and c.code = any(%(codes)s::text[])
   and (s.open or (c.owner_id = %(owner_id)s and c.created_at > now() - make_interval(secs => %(recent_seconds)s)));

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
