-- name: begin
-- As the service. The erasure, marked as being worked on unless it is finished.
update voicegate.erasures
   set state = case when state = 'pending' then 'working' else state end
 where id = %(id)s
returning id, user_id, state, rows_erased;

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

-- name: record_rows
update voicegate.erasures set rows_erased = %(counts)s::jsonb where id = %(id)s;

-- name: summary
select e.id, e.user_id, e.requested_by, e.requested_at, e.cascaded, e.rows_erased,
       coalesce((select jsonb_agg(jsonb_build_object('kind', i.kind, 'state', i.state, 'n', i.n))
                   from (select kind, state, count(*) as n from voicegate.erasure_items
                          where erasure_id = e.id group by kind, state) i), '[]') as tally,
       coalesce((select jsonb_agg(jsonb_build_object('kind', i.kind, 'target', i.target, 'ref', i.ref,
                                                     'error', i.last_error) order by i.id)
                   from voicegate.erasure_items i where i.erasure_id = e.id and i.state = 'refused'), '[]') as refused,
       coalesce((select jsonb_agg(distinct i.target)
                   from voicegate.erasure_items i where i.erasure_id = e.id and i.kind = 'provider_voice'), '[]')
         as providers
  from voicegate.erasures e
 where e.id = %(id)s
   for update;

-- name: finish
update voicegate.erasures
   set state = %(state)s, finished_at = now(), receipt = %(receipt)s::jsonb || jsonb_build_object('finishedAt', now())
 where id = %(id)s and finished_at is null
returning finished_at;

-- name: prune_items
-- Once closed, the items that went: the receipt counts them; what was refused stays, for the operator.
delete from voicegate.erasure_items where erasure_id = %(id)s and state in ('deleted', 'already_gone');
