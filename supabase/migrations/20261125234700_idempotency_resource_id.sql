-- What a request holding an Idempotency-Key stores its objects under, chosen with its claim (issue 45): a
-- sample upload stores its file in Storage before its rows commit, so a process killed between the two left
-- the file behind, and the client's retry with the same key, once it had taken the abandoned claim over,
-- stored the file again under a name of its own. The claim now carries the id its holder names its objects
-- by; a retry that takes a claim over learns the id of the try it replaces and removes what that try stored,
-- which can no longer commit (completing a key checks its claim token). Null for a claim taken before.

set lock_timeout = '4s';

alter table voicegate.idempotency_keys add column resource_id uuid;
