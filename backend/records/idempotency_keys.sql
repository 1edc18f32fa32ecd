-- Named queries of the Idempotency-Key store (idempotency_keys.py); the table is in *_idempotency.sql.
-- Service role only.

-- name: purge_owner_expired
delete from voicegate.idempotency_keys where owner_id = %(owner_id)s and expires_at <= now();

-- name: claim
insert into voicegate.idempotency_keys (owner_id, route, key, fingerprint, claim_token, resource_id, expires_at)
values (%(owner_id)s, %(route)s, %(key)s, %(fingerprint)s, %(claim_token)s, %(resource_id)s, now() + %(ttl)s)
on conflict (owner_id, route, key) do nothing
returning claim_token;

-- name: existing
select fingerprint, state, claim_token, resource_id, response_status, response_body::text as response_body,
       state = 'in_flight' and created_at <= now() - %(lease)s as abandoned
  from voicegate.idempotency_keys
 where owner_id = %(owner_id)s and route = %(route)s and key = %(key)s
   for update;

-- name: reclaim
update voicegate.idempotency_keys
   set fingerprint = %(fingerprint)s, claim_token = %(claim_token)s, resource_id = %(resource_id)s,
       created_at = now(), expires_at = now() + %(ttl)s
 where owner_id = %(owner_id)s and route = %(route)s and key = %(key)s and state = 'in_flight';

-- name: complete
update voicegate.idempotency_keys
   set state = 'completed', response_status = %(status)s, response_body = %(body)s::json, completed_at = now()
 where owner_id = %(owner_id)s and route = %(route)s and key = %(key)s
   and claim_token = %(claim_token)s and state = 'in_flight'
returning claim_token;

-- name: release
delete from voicegate.idempotency_keys
 where owner_id = %(owner_id)s and route = %(route)s and key = %(key)s
   and claim_token = %(claim_token)s and state = 'in_flight';

