-- Usage accounting of streamed speech (POST /v1/reflections/{id}/speech, POST /api/v1/speech): one row
-- a stream, written by the service when it opens (outcome `streaming`) and finished when it ends, with
-- the characters sent to the provider and the seconds of audio streamed. A row left `streaming` is a
-- stream whose process died before it could say how it ended.

set lock_timeout = '4s';

create table public.speech_streams (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  voice_id uuid not null references public.voices (id),
  reflection_id uuid references public.reflections (id) on delete set null,
  attempt_id uuid references public.voice_clone_attempts (id) on delete set null,
  provider text not null check (length(provider) between 1 and 50),
  provider_voice_id text not null check (length(provider_voice_id) between 1 and 200),
  format text not null check (format in ('pcm_24000', 'wav', 'mp3')),
  text_characters integer not null check (text_characters > 0),
  characters integer not null default 0 check (characters >= 0),
  audio_ms integer not null default 0 check (audio_ms >= 0),
  outcome text not null default 'streaming'
    check (outcome in ('streaming', 'completed', 'canceled', 'failed')),
  error_code text check (length(error_code) <= 100),
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  constraint speech_stream_finished check ((outcome = 'streaming') = (finished_at is null))
);
create index speech_streams_owner_idx on public.speech_streams (owner_id, started_at);

revoke all on public.speech_streams from anon, authenticated, service_role;
grant select, insert, update, delete on public.speech_streams to service_role;
grant select on public.speech_streams to authenticated;
alter table public.speech_streams enable row level security;
create policy speech_streams_owner_select on public.speech_streams for select to authenticated
  using (owner_id = (select auth.uid()));
