"""The one settings object, read from the environment once and validated at start-up."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from backend.auth.config import AuthConfigError, AuthSettings, DevKeys, auth_settings_from_env
from backend.cpu import default_workers
from backend.db.pool import PoolLimits
from backend.domain.consents import CONSENT_LANGUAGES
from backend.domain.limits import Retention, SpendQuota, UserLimits
from backend.errors import SettingsError
from backend.providers.config import ProviderSettings, provider_settings_from_env
from backend.providers.env import ProviderConfigError
from backend.records.retention import DAY
from backend.secret import Secret, is_loopback_host
from backend.standard_webhooks.signing import secret_key

DEFAULT_DATA_DIR = Path(".voicegate")
#: The bounds of VOICEGATE_CONSENT_PHRASE_SECONDS (see `_check_phrase_seconds`).
MIN_PHRASE_SECONDS = 60
MAX_PHRASE_SECONDS = 3600
#: Deliveries one endpoint holds queued by default: a burst of events while its receiver restarts, not a day of them.
DEFAULT_WEBHOOK_PENDING = 100
MAX_WEBHOOK_PENDING = 100_000
#: Messages a consumer handles at once by default (VOICEGATE_WORKER_CONCURRENCY).
DEFAULT_WORKER_CONCURRENCY = 8


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Runtime configuration. Every field has an environment variable (named in its docstring)."""

    database_url: str | None = None
    """DATABASE_URL: a Postgres to use instead of the embedded one (Supabase, or any server)."""
    data_dir: Path = DEFAULT_DATA_DIR
    """VOICEGATE_DATA_DIR: where embedded mode keeps its Postgres cluster and local storage."""
    host: str = "127.0.0.1"
    """VOICEGATE_HOST: address the HTTP API binds to."""
    port: int = 8000
    """VOICEGATE_PORT: port the HTTP API binds to."""
    reuse_port: bool = False
    """VOICEGATE_REUSE_PORT: `true` lets several API processes (`voicegate serve`, `up`) listen on the same
    HOST:PORT, each socket with SO_REUSEPORT, and the kernel spreads new connections between them. Off by
    default, so that a port another voicegate holds is an error, not half its traffic."""
    api_processes: int = 1
    """VOICEGATE_API_PROCESSES: processes `voicegate up` serves the API from, all on HOST:PORT (SO_REUSEPORT: the
    kernel spreads new connections between them). The first also runs the queue consumers; each has its own
    database pool, CPU executor and per-process limits (VOICEGATE_USER_CONCURRENCY, VOICEGATE_USER_STREAMS), and
    each more one holds its own copy of the models (about 450 MB once it has served streams)."""
    idle_timeout: float = 10.0
    """VOICEGATE_IDLE_TIMEOUT: seconds a connection may stay open with no request on it (before its first request's
    first byte, and between requests on a kept-alive one) before the server closes it."""
    header_timeout: float = 10.0
    """VOICEGATE_HEADER_TIMEOUT: seconds from a request's first byte until its request line and headers have all
    arrived; past it the connection is answered 408 and closed."""
    body_timeout: float = 10.0
    """VOICEGATE_BODY_TIMEOUT: seconds a route may wait for a request's body beyond what VOICEGATE_BODY_MIN_RATE
    allows (a second for every that many bytes that arrived); past it the request is answered 408 `body_too_slow`
    and its connection closed. Time the route spends not reading does not count."""
    body_min_rate: int = 1024
    """VOICEGATE_BODY_MIN_RATE: the bytes a second a request body must arrive at, on average, after its first
    VOICEGATE_BODY_TIMEOUT seconds (1 KiB: a 25 MiB sample over a link of a few kbit/s)."""
    max_connections: int | None = None
    """VOICEGATE_MAX_CONNECTIONS: connections one API process keeps open at once (default: 80 % of its file
    descriptor limit, which it raises to the hard limit at start). Past it a new connection closes the one that has
    waited longest with no request on it, so `/healthz`, `/readyz` and every client with a request to make still
    get in; only when every connection has a request in flight is the new one answered 503 and closed."""
    public_url: str | None = None
    """VOICEGATE_PUBLIC_URL: the API's address as clients reach it (default http://HOST:PORT)."""
    pg_port: int = 54322
    """VOICEGATE_PG_PORT: loopback port of the embedded Postgres."""
    db_pool_min: int = 2
    """VOICEGATE_DB_POOL_MIN: connections the pool keeps open."""
    db_pool_max: int = 20
    """VOICEGATE_DB_POOL_MAX: most connections the pool opens."""
    db_connect_timeout: float = 0.75
    """VOICEGATE_DB_CONNECT_TIMEOUT: seconds a request waits for a database connection before it is
    answered 503 (an unreachable database, or a pool exhausted by load)."""
    db_timeout: float = 1.0
    """VOICEGATE_DB_TIMEOUT: seconds the server may take to answer one statement (or the commit) of a unit
    of database work before the unit is abandoned and the request answered 503; the server holds each
    statement to it too (statement_timeout), and an idle transaction to five times it."""
    user_concurrency: int = 32
    """VOICEGATE_USER_CONCURRENCY: requests one user (one access token's subject) may have in flight in one API
    process; one more is answered 429 with Retry-After."""
    user_streams: int = 8
    """VOICEGATE_USER_STREAMS: speech streams one user may have open at once in one API process, from the
    request until its last byte; one more is answered 429 `streams_limited` with Retry-After. Lower than
    VOICEGATE_USER_CONCURRENCY, which counts a stream only until it starts."""
    json_body_bytes: int = 1024 * 1024
    """VOICEGATE_JSON_BODY_BYTES: the largest JSON body a route takes (1 MiB; the largest body any route needs is a
    few KiB). A larger one is answered 413 `body_too_large`, from its Content-Length before a byte of it is read,
    or as it arrives when it is sent without one; uploads are multipart and have limits of their own."""
    upload_backlog_seconds: float = 120.0
    """VOICEGATE_UPLOAD_BACKLOG_SECONDS: while the queue that would check an upload holds more than this many
    seconds of work (its messages, at the pace its consumers finished them over the last 30 s, at least one a
    second), the upload is answered 503 `backlog_full` with Retry-After before its body is read, instead of
    being accepted into a wait no client is told about."""
    user_creates: int = 300
    """VOICEGATE_USER_CREATES: creates of each kind (spoken consents, reflections, voices by any route, webhook
    endpoints) one user may make at once, and how many more they may make per VOICEGATE_USER_CREATE_WINDOW (a
    token bucket, held in the database, so it holds across API processes); one more is answered 429
    `creates_limited` with Retry-After. A person making voices in an app makes a few an hour."""
    user_create_window: float = 3600.0
    """VOICEGATE_USER_CREATE_WINDOW: seconds in which a user's VOICEGATE_USER_CREATES creates of a kind come back
    (one every window / creates seconds: 12 s at the defaults)."""
    user_open_consents: int = 20
    """VOICEGATE_USER_OPEN_CONSENTS: spoken consents one user may have awaiting their recording at once (each
    lapses VOICEGATE_CONSENT_PHRASE_SECONDS after it is made); one more is answered 429 `open_consents_limited`,
    with Retry-After the seconds until the oldest lapses."""
    user_draft_voices: int = 50
    """VOICEGATE_USER_DRAFT_VOICES: draft voices (`POST /api/clone/upload-url`, never finalized) one user may have
    at once; a draft does not lapse, so one more is answered 429 `draft_voices_limited` until they finalize or
    delete one."""
    user_characters: int = 200_000
    """VOICEGATE_USER_CHARACTERS: characters one user may have sent to the voice providers (jobs, streams, previews,
    likeness probes) per VOICEGATE_USER_USAGE_WINDOW, held in the database; a request that would pass it is answered
    429 `quota_exceeded` with Retry-After the seconds until the window resets. A person hears a few thousand a day."""
    user_usage_window: int = 86_400
    """VOICEGATE_USER_USAGE_WINDOW: the length in seconds of the fixed windows VOICEGATE_USER_CHARACTERS counts in
    (counted from the epoch: at the default, each UTC day)."""
    user_queued_jobs: int = 20
    """VOICEGATE_USER_QUEUED_JOBS: synthesis jobs one user may have queued or running at once; one more is answered
    429 `jobs_limited`."""
    cpu_workers: int | None = None
    """VOICEGATE_CPU_WORKERS: threads of the process's CPU executor, which runs local renders, sample checks
    and audio signing round robin between users (default: in a process that serves the API, one fewer than the
    CPU cores the process may use, at least 1; in `voicegate worker`, every core: `cpu_threads`)."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """VOICEGATE_LOG_LEVEL."""
    log_format: Literal["text", "json"] = "text"
    """VOICEGATE_LOG_FORMAT: each log line as text, or as one JSON object with the request's id."""
    consumer_mode: Literal["inprocess", "http"] = "inprocess"
    """CONSUMER_MODE: workers run the lifecycle themselves, or call the API's internal route."""
    worker_concurrency: int = DEFAULT_WORKER_CONCURRENCY
    """VOICEGATE_WORKER_CONCURRENCY: messages one consumer handles at once (per queue; the clone queue has its
    own, VOICEGATE_CLONE_CONCURRENCY)."""
    clone_concurrency: int = 16
    """VOICEGATE_CLONE_CONCURRENCY: attempts the clone queue's consumer leases in one read and works at once; their
    statements reach the database in groups of as many (`backend.db.units.Database.grouped`), and their calls to
    a provider wait for VOICEGATE_PROVIDER_CONCURRENCY's slots. An attempt holds its samples in memory while it
    enrols, so this also bounds what a worker holds at once."""
    provider_concurrency: int = 8
    """VOICEGATE_PROVIDER_CONCURRENCY: requests one process has in flight at once with each provider it calls over
    the network (enrolments, look-ups, deletions, syntheses: the API's and the queues' together). One more waits
    for a slot, as for a pooled connection, and counts as a provider that could not be reached when none frees
    in time. Speech streams take no slot: one holds its request for as long as it plays, and
    VOICEGATE_USER_STREAMS bounds them. Set it to your plan's concurrency, so a burst waits here instead of
    meeting the provider's 429."""
    queue_visibility_seconds: int = 30
    """VOICEGATE_QUEUE_VT: seconds a read message stays invisible (extended while it is handled)."""
    queue_max_reads: int = 5
    """VOICEGATE_QUEUE_MAX_READS: deliveries of one message before it goes to the dead-letter queue."""
    queue_poll_interval: float = 1.0
    """VOICEGATE_QUEUE_POLL_INTERVAL: seconds between a consumer's polls while it cannot hear its queue's
    notifications (the database was unreachable), or while it has messages in hand."""
    queue_idle_poll_interval: float = 30.0
    """VOICEGATE_QUEUE_IDLE_POLL_INTERVAL: seconds an idle consumer that hears its queue's notifications waits between
    polls: every insert notifies, and a message due later (a retry's delay, a visibility timeout) wakes it when due,
    so this is the net for a notification lost in transit only."""
    consent: Literal["checkbox", "spoken"] = "checkbox"
    """VOICEGATE_CONSENT: what a sample must be stored under. `checkbox` (the default): a consent ticked with the
    upload (`consent=true`), or a verified spoken consent named by `consentId`. `spoken`: only a verified spoken
    consent (`POST /api/v1/consents`, then its recording), whose speaker every sample must be; a sample sent
    without one is refused with 422 `consent_recording_required`."""
    consent_languages: str = "en"
    """VOICEGATE_CONSENT_LANGUAGES: the languages a spoken consent's phrase is offered in, comma separated, from en,
    zh, es, de, fr, ja, pt and it (`POST /api/v1/consents` `language`; another is refused with 422). English is heard
    by pocketsphinx, the others by Whisper base, whose weights `make up` installs when this names one
    (requirements/languages.lock, about 290 MB installed; docs/consent.md#languages)."""
    consent_phrase_seconds: int = 600
    """VOICEGATE_CONSENT_PHRASE_SECONDS: how long a spoken consent's phrase may be recorded in after it is made (its
    `expiresAt`), from 60 s to an hour. Its code is for that sitting: past it, the consent is `expired` and a
    recording of it is refused with 422 `consent_expired` before its audio is read."""
    storage_wait_seconds: float = 3600.0
    """VOICEGATE_STORAGE_WAIT_SECONDS: how long a queue message may wait out Storage being unreachable (handed
    back uncounted) before it is reported (an ERROR log line, a metric, an audit event) and its deliveries
    count toward VOICEGATE_QUEUE_MAX_READS, so that it ends as a dead letter with `storage_unavailable`."""
    storage_version_seconds: float = 1.0
    """VOICEGATE_STORAGE_VERSION_SECONDS: how long the API takes Storage's word for what a stored file is (its version:
    ETag, size and time, from a HEAD) before it asks again, when it links the file with a signed URL (a polled
    preview). A file changed behind voicegate is refused by the first URL asked for after this; 0 asks every time.
    A URL handed out stays valid for its lifetime whatever happens to the file, so this adds little to that."""
    lease_seconds: int = 60
    """VOICEGATE_LEASE_SECONDS: how long a worker's claim on an attempt lasts unless renewed."""
    retry_base_seconds: float = 5.0
    """VOICEGATE_RETRY_BASE_SECONDS: first backoff after a transient provider failure (doubles each time)."""
    maintenance_interval: float = 60.0
    """VOICEGATE_MAINTENANCE_INTERVAL: seconds between the worker's stale-attempt and dead-letter sweeps."""
    stale_after_seconds: int = 900
    """VOICEGATE_STALE_AFTER: seconds after which a queued attempt with no message is requeued."""
    sample_retention_days: float = 30.0
    """VOICEGATE_SAMPLE_RETENTION_DAYS: how long an uploaded sample (and its processed copy) is kept."""
    orphan_grace_seconds: float = 3600.0
    """VOICEGATE_ORPHAN_GRACE: seconds an object no row claims (or, in embedded mode, a stored file with no
    object row) is left alone before the maintenance sweep removes it; uploads in progress are younger."""
    queue_archive_retention_days: float = 3.0
    """VOICEGATE_QUEUE_ARCHIVE_RETENTION_DAYS: how long a finished queue message is kept in its queue's archive
    (`pgmq.a_<queue>`: clone, sample, preview, synthesis, webhook delivery, dead letter and erasure messages), and a
    failed delivery's error with it; then the maintenance sweep removes it. 0 keeps them for ever."""
    audit_retention_days: float = 400.0
    """VOICEGATE_AUDIT_RETENTION_DAYS: how long an audit event is kept, except those a legal hold keeps for ever
    (consents, erasures, deleted provider voices and sample audio, refused speakers: docs/operations.md). 0 keeps
    every event."""
    attempt_history_retention_days: float = 90.0
    """VOICEGATE_ATTEMPT_HISTORY_RETENTION_DAYS: how long the events (each state it moved through) of a clone attempt
    that finished are kept after it finished; the attempt itself stays with its last state. 0 keeps them for ever."""
    speech_retention_days: float = 90.0
    """VOICEGATE_SPEECH_RETENTION_DAYS: how long the record of a finished speech stream, and of a launched session,
    is kept. 0 keeps them for ever."""
    job_retention_days: float = 30.0
    """VOICEGATE_JOB_RETENTION_DAYS: how long a finished synthesis job is kept after it finished; then its row goes
    and its render, claimed by no row, is removed by the orphan sweep (VOICEGATE_ORPHAN_GRACE). 0 keeps them."""
    usage_retention_days: float = 400.0
    """VOICEGATE_USAGE_RETENTION_DAYS: how long a row of the usage ledger (`voicegate ops usage`) is kept: at least
    two VOICEGATE_USER_USAGE_WINDOWs (the current one and the last, whole). 0 keeps the ledger for ever."""
    retention_batch: int = 1000
    """VOICEGATE_RETENTION_BATCH: rows one of the maintenance sweep's retention transactions removes at most (from
    10 to 100,000); each is short, so no request waits on it for more than a few milliseconds."""
    ffmpeg: Path | None = None
    """VOICEGATE_FFMPEG: the ffmpeg executable that decodes what libsndfile cannot (WebM and M4A uploads), run as
    a separate program (default: Debian's `ffmpeg` on PATH, else the static binary of the imageio-ffmpeg wheel)."""
    auth: AuthSettings | None = None
    """Token verification and service keys (SUPABASE_URL, SUPABASE_JWT_SECRET, SUPABASE_JWT_ISSUER,
    SUPABASE_*_KEY); set by `with_auth`, because in embedded mode it creates the dev JWT secret under the
    data directory."""
    providers: ProviderSettings | None = None
    """Provider keys, regions and base URLs (VOICE_PROVIDER, DASHSCOPE_*, ELEVENLABS_*, CARTESIA_*)."""
    c2pa_cert: Path | None = None
    """VOICEGATE_C2PA_CERT: path of a PEM file holding the C2PA signing certificate, then its intermediates
    (ES256/ES384/ES512 or PS256 keys). Required with DATABASE_URL; embedded mode makes a development CA."""
    c2pa_key: Path | None = None
    """VOICEGATE_C2PA_KEY: path of the unencrypted PEM private key of VOICEGATE_C2PA_CERT's first certificate."""
    c2pa_trust_anchors: Path | None = None
    """VOICEGATE_C2PA_TRUST_ANCHORS: path of a PEM bundle of root certificates a manifest must chain to for
    `voicegate verify` to call it trusted (embedded mode also trusts its development CA)."""
    voice_ownership: Literal["ask", "hold", "refuse", "off"] = "ask"
    """VOICEGATE_VOICE_OWNERSHIP: what becomes of a new consent reading or sample whose voice matches a print of
    another account (docs/ownership.md): `ask` has its uploader read a consent phrase, matched to the sample (a
    near-identical match, which no reading settles, is kept for an operator's review), `hold` keeps every match for
    review (`voicegate ops voice-holds`), `refuse` refuses it at once, `off` compares nothing."""
    ownership_threshold: float | None = None
    """VOICEGATE_OWNERSHIP_THRESHOLD: the cosine from which a new consent reading or sample matches another
    account's print (docs/ownership.md), from 0.50 to 0.99; unset, the threshold calibrated on real speech
    (`backend.voiceprint.OWNERSHIP_THRESHOLD`, 0.52). A large registry's operator may raise it to hold fewer new
    voices that are nobody else's, at the cost of copies that are."""
    likeness_probe: Literal["on", "off"] = "on"
    """VOICEGATE_LIKENESS_PROBE: `on` has the provider speak one short probe sentence (under 80 characters) in
    every new voice as its enrolment ends, to judge its likeness to the samples; `off` judges the voice's first
    preview or render instead, with no extra provider call (the likeness stays null until one is made)."""
    webhook_url: str | None = None
    """VOICEGATE_WEBHOOK_URL: the project's endpoint, which receives every user's events (https; plain http
    only to a loopback address)."""
    webhook_secret: Secret | None = None
    """VOICEGATE_WEBHOOK_SECRET: the `whsec_<base64>` secret deliveries to VOICEGATE_WEBHOOK_URL are signed with."""
    webhook_max_attempts: int = 15
    """VOICEGATE_WEBHOOK_MAX_ATTEMPTS: deliveries of one event to one endpoint before it is dead-lettered."""
    webhook_retry_base_seconds: float = 5.0
    """VOICEGATE_WEBHOOK_RETRY_BASE_SECONDS: wait before the second delivery; it doubles each time (with
    jitter, at most 6 h), so the default 15 attempts span about a day."""
    webhook_pending: int = DEFAULT_WEBHOOK_PENDING
    """VOICEGATE_WEBHOOK_PENDING: deliveries one user's endpoint may hold queued (waiting, being sent or backing
    off); an event past it moves the endpoint's oldest to the dead letters (docs/api/webhooks.md)."""

    def cpu_threads(self, *, serves_api: bool) -> int:
        """The CPU executor's threads in a process that serves the API, or in a worker (VOICEGATE_CPU_WORKERS)."""
        return self.cpu_workers if self.cpu_workers is not None else default_workers(serves_api=serves_api)

    @property
    def provider_settings(self) -> ProviderSettings:
        """The provider settings (`settings_from_env` always reads them)."""
        if self.providers is None:
            raise ValueError("provider settings were not read; build Settings with settings_from_env")
        return self.providers

    @property
    def pool_limits(self) -> PoolLimits:
        """What a connection pool is held to (VOICEGATE_DB_POOL_*, VOICEGATE_DB_*TIMEOUT)."""
        return PoolLimits(
            min_size=self.db_pool_min,
            max_size=self.db_pool_max,
            connect_timeout=self.db_connect_timeout,
            work_timeout=self.db_timeout,
        )

    @property
    def user_limits(self) -> UserLimits:
        """What one user may create (VOICEGATE_USER_CREATES, _CREATE_WINDOW, _OPEN_CONSENTS, _DRAFT_VOICES)."""
        return UserLimits(
            creates=self.user_creates,
            window_seconds=self.user_create_window,
            open_consents=self.user_open_consents,
            draft_voices=self.user_draft_voices,
        )

    @property
    def spend_quota(self) -> SpendQuota:
        """What one user may spend (VOICEGATE_USER_CHARACTERS, _USAGE_WINDOW, _QUEUED_JOBS)."""
        return SpendQuota(
            characters=self.user_characters,
            window_seconds=self.user_usage_window,
            queued_jobs=self.user_queued_jobs,
        )

    @property
    def retention(self) -> Retention:
        """How long each growing table keeps its rows (VOICEGATE_*_RETENTION_DAYS, VOICEGATE_RETENTION_BATCH)."""
        return Retention(
            queue_archive_days=self.queue_archive_retention_days,
            audit_days=self.audit_retention_days,
            attempt_history_days=self.attempt_history_retention_days,
            speech_days=self.speech_retention_days,
            job_days=self.job_retention_days,
            usage_days=self.usage_retention_days,
            batch=self.retention_batch,
        )

    @property
    def consent_language_codes(self) -> tuple[str, ...]:
        """VOICEGATE_CONSENT_LANGUAGES as a list, in its order."""
        return tuple(code.strip() for code in self.consent_languages.split(",") if code.strip())

    @property
    def embedded(self) -> bool:
        """True when voicegate runs its own Postgres."""
        return self.database_url is None

    @property
    def api_base_url(self) -> str:
        """Where clients reach this API."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def storage_public_url(self) -> str:
        """Storage as clients reach it: our own `/storage/v1` when embedded, else the Supabase project's."""
        if self.embedded or self.auth is None or self.auth.supabase_url is None:
            return f"{self.api_base_url}/storage/v1"
        return f"{self.auth.supabase_url.rstrip('/')}/storage/v1"


# A field's variable is VOICEGATE_<FIELD>, except these (named before the convention, or shorter).
_ENV_EXCEPTIONS = {
    "database_url": "DATABASE_URL",
    "consumer_mode": "CONSUMER_MODE",
    "queue_visibility_seconds": "VOICEGATE_QUEUE_VT",
    "stale_after_seconds": "VOICEGATE_STALE_AFTER",
    "orphan_grace_seconds": "VOICEGATE_ORPHAN_GRACE",
}
# `auth` and `providers` are read by modules of their own, from variables of their own.
_ENV = {
    field: _ENV_EXCEPTIONS.get(field, f"VOICEGATE_{field.upper()}")
    for field in Settings.__struct_fields__
    if field not in ("auth", "providers")
}


def env_var(field: str) -> str:
    """The environment variable behind a settings field."""
    return _ENV[field]


def settings_from_env(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build and validate Settings from `env` (default: the process environment) plus overrides."""
    env = os.environ if env is None else env
    raw: dict[str, object] = {field: env[var] for field, var in _ENV.items() if env.get(var, "") != ""}
    raw.update({key: value for key, value in overrides.items() if value is not None})
    try:
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=_decode)
        providers = provider_settings_from_env(env)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(exc)) from exc
    except ProviderConfigError as exc:
        raise SettingsError(str(exc)) from exc
    _check(settings)
    return msgspec.structs.replace(settings, providers=providers)


def with_auth(settings: Settings, env: Mapping[str, str] | None = None, dev: DevKeys | None = None) -> Settings:
    """`settings` with its auth settings read; in embedded mode the keys the environment leaves unset come from
    `dev`, which the program hands in (`standins.embedded.with_auth_keys`): SettingsError without it."""
    if settings.embedded and dev is None:
        raise SettingsError(
            "embedded mode's keys come from its data directory: read its settings with standins.embedded.with_auth_keys"
        )
    try:
        auth = auth_settings_from_env(os.environ if env is None else env, dev)
    except AuthConfigError as exc:
        raise SettingsError(str(exc)) from exc
    return msgspec.structs.replace(settings, auth=auth)


def _decode(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str | Path):
        return Path(value)
    if type_ is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError


#: Supabase's transaction-mode pooler (Supavisor, or PgBouncer when self-hosted); session mode is on 5432.
_TRANSACTION_POOLER_PORT = 6543


def _port(url: str) -> int | None:
    """The URL's port, or None when it names none (or several hosts, which urlsplit cannot read)."""
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    for field, var in _ENV.items():
        # The whole name: `$.consent` is the start of `$.consent_phrase_seconds` too.
        if re.search(rf"\$\.{field}\b", message):
            return f"{var}: {message.split(' - at', maxsplit=1)[0]}"
    return message


def _check(settings: Settings) -> None:
    if settings.database_url is not None and not settings.database_url.startswith(("postgres://", "postgresql://")):
        raise SettingsError("DATABASE_URL must be a postgres:// or postgresql:// URL")
    if settings.database_url is not None and _port(settings.database_url) == _TRANSACTION_POOLER_PORT:
        raise SettingsError(
            "DATABASE_URL points at a transaction-mode pooler (port 6543, Supabase's Supavisor or PgBouncer),"
            " which hands each transaction to another server session and drops what voicegate keeps per"
            " session (LISTEN, prepared statements, a worker's role): use the direct connection or the"
            " session-mode pooler on port 5432"
        )
    for field in ("port", "pg_port"):
        value = getattr(settings, field)
        if not 0 < value < 65536:
            raise SettingsError(f"{env_var(field)} must be a TCP port (1-65535), got {value}")
    if not 1 <= settings.db_pool_min <= settings.db_pool_max:
        raise SettingsError("VOICEGATE_DB_POOL_MIN must be at least 1 and at most VOICEGATE_DB_POOL_MAX")
    for field in (
        "api_processes",
        "user_concurrency",
        "user_streams",
        "body_min_rate",
        "max_connections",
        "json_body_bytes",
        "user_creates",
        "user_open_consents",
        "user_draft_voices",
        "user_characters",
        "user_usage_window",
        "user_queued_jobs",
        "cpu_workers",
        "worker_concurrency",
        "clone_concurrency",
        "provider_concurrency",
        "queue_visibility_seconds",
        "queue_max_reads",
        "lease_seconds",
        "webhook_max_attempts",
    ):
        value = getattr(settings, field)
        if value is not None and value < 1:  # None: the process chooses (VOICEGATE_CPU_WORKERS)
            raise SettingsError(f"{env_var(field)} must be at least 1")
    for field in (
        "db_connect_timeout",
        "db_timeout",
        "queue_poll_interval",
        "queue_idle_poll_interval",
        "retry_base_seconds",
        "maintenance_interval",
        "stale_after_seconds",
        "sample_retention_days",
        "webhook_retry_base_seconds",
        "orphan_grace_seconds",
        "upload_backlog_seconds",
        "idle_timeout",
        "header_timeout",
        "body_timeout",
    ):
        if getattr(settings, field) <= 0:
            raise SettingsError(f"{env_var(field)} must be positive")
    _check_retention(settings)
    _check_storage_wait(settings.storage_wait_seconds)
    _check_storage_version(settings.storage_version_seconds)
    _check_phrase_seconds(settings.consent_phrase_seconds)
    _check_consent_languages(settings.consent_language_codes)
    _check_ownership_threshold(settings.ownership_threshold)
    _check_webhook_pending(settings.webhook_pending)
    _check_create_window(settings.user_create_window)
    for field in ("c2pa_cert", "c2pa_key", "c2pa_trust_anchors"):
        # The variables name files, so keys stay out of the environment (and of /proc/<pid>/environ).
        if str(getattr(settings, field) or "").lstrip().startswith("-----BEGIN"):
            raise SettingsError(f"{env_var(field)} must be the path of a PEM file, not the PEM text itself")
    if (settings.c2pa_cert is None) != (settings.c2pa_key is None):
        raise SettingsError("set both VOICEGATE_C2PA_CERT and VOICEGATE_C2PA_KEY, or neither")
    _check_webhook(settings)


#: The fewest and the most rows one retention batch may remove.
RETENTION_BATCH_RANGE = (10, 100_000)


def _check_retention(settings: Settings) -> None:
    for field in (
        "queue_archive_retention_days",
        "audit_retention_days",
        "attempt_history_retention_days",
        "speech_retention_days",
        "job_retention_days",
        "usage_retention_days",
    ):
        days = getattr(settings, field)
        if not math.isfinite(days) or days < 0:
            raise SettingsError(f"{env_var(field)} must be a number of days, 0 (keep for ever) or more (got {days})")
    # The current window and the one before, so that the last finished window's report is whole.
    least = 2 * settings.user_usage_window / DAY
    if 0 < settings.usage_retention_days < least:
        raise SettingsError(
            f"VOICEGATE_USAGE_RETENTION_DAYS must be 0 (keep for ever) or at least {least:g}: two"
            f" VOICEGATE_USER_USAGE_WINDOWs, the current one and the last (got {settings.usage_retention_days})"
        )
    low, high = RETENTION_BATCH_RANGE
    if not low <= settings.retention_batch <= high:
        raise SettingsError(
            f"VOICEGATE_RETENTION_BATCH must be from {low} to {high:,} rows (got {settings.retention_batch})"
        )


def _check_storage_wait(seconds: float) -> None:
    if not math.isfinite(seconds) or seconds < 1:
        raise SettingsError(
            "VOICEGATE_STORAGE_WAIT_SECONDS must be a number of seconds, at least 1: how long a queue message waits"
            f" out a Storage outage before it is reported and its deliveries count toward a dead letter (got {seconds})"
        )


def _check_storage_version(seconds: float) -> None:
    if not math.isfinite(seconds) or not 0 <= seconds <= 60:
        raise SettingsError(
            "VOICEGATE_STORAGE_VERSION_SECONDS must be a number of seconds from 0 to 60: how long the API takes"
            f" Storage's word for what a stored file is before it asks again (got {seconds})"
        )


def _check_consent_languages(codes: tuple[str, ...]) -> None:
    """Each a language a phrase is worded in (whether Whisper is installed for those beyond English is found when a
    server starts: `backend.consents.whisper.use_languages`)."""
    unknown = [code for code in codes if code not in CONSENT_LANGUAGES]
    if not codes or unknown:
        raise SettingsError(
            f"VOICEGATE_CONSENT_LANGUAGES must name languages from {', '.join(CONSENT_LANGUAGES)}, comma separated"
            f" (got {', '.join(unknown) or 'none'})"
        )


def _check_phrase_seconds(seconds: int) -> None:
    # Reading the phrase takes about 10 s, and a recording may be sent a few times (the page stops one at 40 s);
    # past an hour the code no longer stands for one sitting, and there is more time to synthesise the phrase.
    if not MIN_PHRASE_SECONDS <= seconds <= MAX_PHRASE_SECONDS:
        raise SettingsError(
            f"VOICEGATE_CONSENT_PHRASE_SECONDS must be from {MIN_PHRASE_SECONDS} to {MAX_PHRASE_SECONDS} seconds: how"
            f" long a spoken consent's phrase may be recorded in after it is made (got {seconds})"
        )


def _check_ownership_threshold(threshold: float | None) -> None:
    # Below 0.50 different people's uploads near the calibration's highest (0.45), and strangers are asked to read
    # for nothing; at 1.00 nothing ever matches, which VOICEGATE_VOICE_OWNERSHIP=off says plainly.
    if threshold is not None and not (math.isfinite(threshold) and 0.50 <= threshold <= 0.99):
        raise SettingsError(
            "VOICEGATE_OWNERSHIP_THRESHOLD must be a cosine from 0.50 to 0.99: from how close a new voice to another"
            f" account's print it is held (got {threshold})"
        )


def _check_webhook_pending(pending: int) -> None:
    # The database holds the bound within these (voicegate.project_webhook): past 100,000 a few dead endpoints
    # would again fill the queue everyone's deliveries share.
    if not 1 <= pending <= MAX_WEBHOOK_PENDING:
        raise SettingsError(
            f"VOICEGATE_WEBHOOK_PENDING must be from 1 to {MAX_WEBHOOK_PENDING}: the deliveries one endpoint may hold"
            f" queued before its oldest are dead-lettered (got {pending})"
        )


def _check_create_window(seconds: float) -> None:
    if not math.isfinite(seconds) or seconds <= 0:
        raise SettingsError(
            "VOICEGATE_USER_CREATE_WINDOW must be a positive number of seconds: the time in which a user's"
            f" VOICEGATE_USER_CREATES creates of a kind come back (got {seconds})"
        )


def _check_webhook(settings: Settings) -> None:
    if (settings.webhook_url is None) != (settings.webhook_secret is None):
        raise SettingsError("set both VOICEGATE_WEBHOOK_URL and VOICEGATE_WEBHOOK_SECRET, or neither")
    if settings.webhook_url is None or settings.webhook_secret is None:
        return
    parts = urlsplit(settings.webhook_url)
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or not host:
        raise SettingsError("VOICEGATE_WEBHOOK_URL must be an https URL")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise SettingsError("VOICEGATE_WEBHOOK_URL must use https (plain http is allowed only for loopback)")
    if parts.username or parts.password or parts.fragment:
        raise SettingsError("VOICEGATE_WEBHOOK_URL must not carry credentials or a fragment")
    try:
        secret_key(settings.webhook_secret.reveal())
    except ValueError as exc:
        raise SettingsError(f"VOICEGATE_WEBHOOK_SECRET: {exc}") from exc
