-- name: subject
-- As the service. Who an operator means: an id or an e-mail address (voicegate.erasure_subject).
select user_id, present, email from voicegate.erasure_subject(%(who)s);

-- name: targets
-- What an erasure of the user would take outside Postgres.
select kind, target, ref, region from voicegate.erasure_targets(%(user_id)s) order by kind, target, ref;

-- name: hold_voices
-- The user's voices, locked before their auth.users row is deleted: the user's own work locks a voice and then
-- writes a row naming the user, whose foreign key waits for the auth.users row; taken in that order too, the erasure
-- waits for such work to commit instead of deadlocking with it.
select count(*) as held from (select from public.voices where owner_id = %(user_id)s order by id for update) v;

-- name: erase
-- Delete the user's auth.users row as Supabase Auth does: its trigger starts the erasure.
select voicegate.erase_user(%(user_id)s, %(actor)s) as erasure_id;

-- name: by_user
select id from voicegate.erasures where user_id = %(user_id)s;

-- name: erasures
-- Newest first, after the cursor (`before_at`, `before_id`). A closed erasure's items that went are pruned (the
-- receipt counts them): its items are what is left and what its receipt says went.
select e.id, e.user_id, e.requested_by, e.state, e.requested_at, e.finished_at,
       ((select count(*) from voicegate.erasure_items i where i.erasure_id = e.id)
       + coalesce((select sum(c.value::bigint)
                     from jsonb_each(coalesce(e.receipt, '{}'::jsonb)) p,
                          jsonb_each_text(case when jsonb_typeof(p.value) = 'object' then p.value else '{}' end) c
                    where p.key in ('objects', 'providerVoices', 'enrolmentKeys')
                      and c.key in ('deleted', 'already_gone')), 0))::bigint as items,
       (select count(*) from voicegate.erasure_items i where i.erasure_id = e.id and i.state = 'pending') as pending,
       (select count(*) from voicegate.erasure_items i where i.erasure_id = e.id and i.state = 'refused') as refused
  from voicegate.erasures e
 where (%(state)s::text is null or e.state = %(state)s::text)
   and (%(before_at)s::timestamptz is null or (e.requested_at, e.id) < (%(before_at)s::timestamptz, %(before_id)s::uuid))
 order by e.requested_at desc, e.id desc
 limit %(limit)s;

-- name: erasure
select e.id, e.user_id, e.requested_by, e.state, e.requested_at, e.finished_at, e.cascaded, e.rows_erased, e.receipt
  from voicegate.erasures e
 where e.id = %(id)s or e.user_id = %(id)s;

-- name: items
select id, kind, target, ref, region, state, tries, last_error, done_at
  from voicegate.erasure_items
 where erasure_id = %(id)s
 order by id;
