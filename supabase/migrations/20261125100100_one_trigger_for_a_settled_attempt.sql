-- One trigger where an attempt that settles had three (issue 29), doing what they did in the order they did it.
--
-- When an attempt's status moved, three row triggers each read and compiled their own WHEN condition for
-- the statement, and as many as matched were called, each a function call of its own under its own
-- search_path: the provider reference recorded (ready), the synthesis jobs waiting on the attempt woken
-- (ready, failed, canceled, superseded), the webhook event (ready or failed, while active). They fired in
-- the order of their names, which is the order of the steps below.

set lock_timeout = '4s';

create function voicegate.attempt_settled() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'ready' and new.provider_voice_id is not null then
    insert into public.voice_provider_references
      (voice_id, owner_id, provider, provider_voice_id, target_model, attempt_id, reason)
    values (new.voice_id, new.owner_id, new.provider, new.provider_voice_id, new.provider_target_model, new.id,
            new.source)
    on conflict (voice_id, provider, provider_voice_id) do update
       set target_model = coalesce(excluded.target_model, public.voice_provider_references.target_model),
           last_verified_at = now(),
           gone_at = null,
           gone_reason = null;
  end if;

  perform pgmq.send('voice_synthesis', jsonb_build_object('jobId', j.id))
     from public.synthesis_jobs j
    where j.attempt_id = new.id and j.status = 'queued';

  if new.status in ('ready', 'failed') and new.is_active then
    perform voicegate.emit_webhook('voice.' || new.status, new.owner_id, jsonb_build_object(
      'voiceId', new.voice_id,
      'attemptId', new.id,
      'reflectionId', new.reflection_id,
      'provider', new.provider,
      'providerVoiceId', new.provider_voice_id,
      'targetModel', new.provider_target_model,
      'error', case when new.status = 'failed' and new.last_error_code is not null
                    then jsonb_build_object('code', new.last_error_code, 'message', new.last_error_message) end));
  end if;
  return null;
end
$$;
revoke all on function voicegate.attempt_settled() from public;

drop trigger voice_clone_attempts_record_reference on public.voice_clone_attempts;
drop trigger voice_clone_attempts_wake_synthesis on public.voice_clone_attempts;
drop trigger voice_clone_attempts_webhook on public.voice_clone_attempts;

create trigger voice_clone_attempts_settled
  after update of status on public.voice_clone_attempts
  for each row
  when (old.status is distinct from new.status
        and new.status in ('ready', 'failed', 'canceled', 'superseded'))
  execute function voicegate.attempt_settled();

-- The three trigger functions had no caller but their triggers (execute revoked from everyone).
-- squawk-ignore ban-drop-function
drop function voicegate.record_provider_reference();
-- squawk-ignore ban-drop-function
drop function voicegate.wake_synthesis_jobs();
-- squawk-ignore ban-drop-function
drop function voicegate.webhook_attempt_event();
