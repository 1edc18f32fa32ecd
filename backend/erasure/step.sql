-- name: begin
-- As the service. The erasure, marked as being worked on unless it is finished. Its first step sets when what was in
-- flight has stopped: a lease held when the erasure began could be extended until the erasure committed (the rows
-- went then), and this step comes after that commit, so the leases run out within `lease_seconds` of it.
update voicegate.erasures
   set state = case when state = 'pending' then 'working' else state end,
       settle_at = coalesce(settle_at,
                            now() + case when in_flight > 0 then make_interval(secs => %(lease_seconds)s)
                                         else interval '0' end)
 where id = %(id)s
returning id, user_id, state, settle_at, rounds, now() as db_now;

-- name: pending_items
select id, kind, target, ref, region, tries
  from voicegate.erasure_items
 where erasure_id = %(id)s and state = 'pending'
 order by id;

-- name: settle_items
-- Each item's outcome as one tried it: a state (`pending` while it is to be tried again) and its error.
update voicegate.erasure_items i
   set state = o.state,
       tries = i.tries + 1,
       last_error = left(o.error, 1000),
       done_at = case when o.state = 'pending' then null else now() end
  from jsonb_to_recordset(%(outcomes)s::jsonb) as o (id bigint, state text, error text)
 where i.id = o.id and i.state = 'pending';

-- name: erase_rows
select voicegate.erase_user_rows(%(id)s) as counts;

-- name: rows_erased
select rows_erased from voicegate.erasures where id = %(id)s for update;

-- name: record_rows
update voicegate.erasures set rows_erased = %(counts)s::jsonb where id = %(id)s;

-- name: leftovers
select voicegate.erasure_leftovers(%(id)s) as found;

-- name: settled_keys
-- The enrolment keys the final scan looks up again: those whose voice went, or that had made none.
select id, kind, target, ref, region, tries
  from voicegate.erasure_items
 where erasure_id = %(id)s and kind = 'enrolment_key' and state in ('deleted', 'already_gone')
 order by id;

-- name: go_round
-- What the final scan found, sent round again: the objects as items to delete (again), the enrolment keys that found
-- a voice as pending; the rows are erased again by the next round.
with objects as (
  insert into voicegate.erasure_items (erasure_id, kind, target, ref)
  select %(id)s, 'object', o ->> 'bucket', o ->> 'name' from jsonb_array_elements(%(found)s::jsonb -> 'objects') o
  on conflict (erasure_id, kind, target, ref)
  do update set state = 'pending', done_at = null, last_error = 'found by the final scan'
), keys as (
  update voicegate.erasure_items
     set state = 'pending', done_at = null, last_error = 'found by the final scan'
   where erasure_id = %(id)s and kind = 'enrolment_key' and id = any (%(keys)s::bigint[])
)
update voicegate.erasures set rounds = rounds + 1, leftovers = %(found)s::jsonb where id = %(id)s;

-- name: summary
select e.id, e.user_id, e.requested_by, e.requested_at, e.cascaded, e.rows_erased, e.rounds, e.in_flight,
       coalesce((select jsonb_agg(jsonb_build_object('kind', i.kind, 'state', i.state, 'n', i.n))
                   from (select kind, state, count(*) as n from voicegate.erasure_items
                          where erasure_id = e.id group by kind, state) i), '[]') as tally,
       coalesce((select jsonb_agg(jsonb_build_object('kind', i.kind, 'target', i.target, 'ref', i.ref,
                                                     'error', i.last_error) order by i.id)
                   from voicegate.erasure_items i where i.erasure_id = e.id and i.state = 'refused'), '[]') as refused,
       coalesce((select jsonb_agg(distinct i.target)
                   from voicegate.erasure_items i
                  where i.erasure_id = e.id and i.kind in ('provider_voice', 'enrolment_key')), '[]') as providers
  from voicegate.erasures e
 where e.id = %(id)s
   for update;

-- name: finish
update voicegate.erasures
   set state = %(state)s, finished_at = now(), leftovers = %(leftovers)s::jsonb,
       receipt = %(receipt)s::jsonb || jsonb_build_object('finishedAt', now())
 where id = %(id)s and finished_at is null
returning finished_at;

-- name: prune_items
-- Once closed, the items that went: the receipt counts them; what was refused stays, for the operator.
delete from voicegate.erasure_items where erasure_id = %(id)s and state in ('deleted', 'already_gone');
