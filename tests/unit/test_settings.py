"""Settings come from the environment once and are validated with messages naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backend.domain.limits import SpendQuota, UserLimits
from backend.errors import SettingsError
from backend.settings import settings_from_env


def test_defaults_describe_the_embedded_stack() -> None:
    settings = settings_from_env({})
    assert settings.embedded
    assert settings.data_dir == Path(".voicegate")
    assert (settings.host, settings.port, settings.pg_port) == ("127.0.0.1", 8000, 54322)
    # A user's streams are capped below their requests; the CPU executor leaves the event loop a core.
    assert settings.user_streams < settings.user_concurrency
    cores = len(os.sched_getaffinity(0))
    assert settings.cpu_threads(serves_api=True) == max(1, cores - 1)
    # A worker answers no request: it takes every core.
    assert settings.cpu_threads(serves_api=False) == cores
    assert settings_from_env({"VOICEGATE_CPU_WORKERS": "3"}).cpu_threads(serves_api=False) == 3


def test_environment_and_overrides() -> None:
    env = {
        "DATABASE_URL": "postgresql://u@db:5432/postgres",
        "VOICEGATE_PORT": "9000",
        "VOICEGATE_DATA_DIR": "/d",
    }
    settings = settings_from_env(env, port=9100)
    assert not settings.embedded
    assert settings.port == 9100
    assert settings.data_dir == Path("/d")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:5432/postgres",  # session mode
        "postgresql://postgres:pw@db.ref.supabase.co:5432/postgres",  # direct
        "postgresql://u@h1:5432,h2:6543/db",  # several hosts: not read for a port
    ],
)
def test_a_direct_connection_or_a_session_mode_pooler_is_accepted(url: str) -> None:
    assert settings_from_env({"DATABASE_URL": url}).database_url == url


def test_a_queue_message_waits_out_storage_for_an_hour_unless_told_otherwise() -> None:
    assert settings_from_env({}).storage_wait_seconds == 3600
    assert settings_from_env({"VOICEGATE_STORAGE_WAIT_SECONDS": "90"}).storage_wait_seconds == 90
    assert settings_from_env({"VOICEGATE_STORAGE_VERSION_SECONDS": "0"}).storage_version_seconds == 0


def test_what_a_user_may_create_is_far_past_what_a_person_does_unless_told_otherwise() -> None:
    assert settings_from_env({}).user_limits == UserLimits(
        creates=300, window_seconds=3600, open_consents=20, draft_voices=50
    )
    env = {
        "VOICEGATE_USER_CREATES": "5",
        "VOICEGATE_USER_CREATE_WINDOW": "0.5",
        "VOICEGATE_USER_OPEN_CONSENTS": "2",
        "VOICEGATE_USER_DRAFT_VOICES": "3",
    }
    assert settings_from_env(env).user_limits == UserLimits(
        creates=5, window_seconds=0.5, open_consents=2, draft_voices=3
    )


def test_what_a_user_may_spend_is_far_past_what_a_person_does_unless_told_otherwise() -> None:
    assert settings_from_env({}).spend_quota == SpendQuota(characters=200_000, window_seconds=86_400, queued_jobs=20)
    env = {
        "VOICEGATE_USER_CHARACTERS": "1000",
        "VOICEGATE_USER_USAGE_WINDOW": "3600",
        "VOICEGATE_USER_QUEUED_JOBS": "2",
    }
    assert settings_from_env(env).spend_quota == SpendQuota(characters=1000, window_seconds=3600, queued_jobs=2)


def test_a_consent_phrase_lasts_ten_minutes_unless_told_otherwise() -> None:
    assert settings_from_env({}).consent_phrase_seconds == 600
    assert settings_from_env({"VOICEGATE_CONSENT_PHRASE_SECONDS": "120"}).consent_phrase_seconds == 120


def test_the_ownership_threshold_is_the_calibrated_one_unless_told_otherwise() -> None:
    assert settings_from_env({}).ownership_threshold is None
    assert settings_from_env({"VOICEGATE_OWNERSHIP_THRESHOLD": "0.9"}).ownership_threshold == 0.9


def test_empty_variables_mean_unset() -> None:
    assert settings_from_env({"DATABASE_URL": "", "VOICEGATE_PORT": ""}).embedded


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOICEGATE_PORT": "eighty"}, "VOICEGATE_PORT"),
        ({"VOICEGATE_PORT": "70000"}, "VOICEGATE_PORT must be a TCP port"),
        ({"VOICEGATE_PG_PORT": "0"}, "VOICEGATE_PG_PORT must be a TCP port"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be a postgres"),
        (
            {"DATABASE_URL": "postgresql://postgres.ref:pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres"},
            "DATABASE_URL points at a transaction-mode pooler .* session-mode pooler on port 5432",
        ),
        ({"VOICEGATE_DB_POOL_MIN": "5", "VOICEGATE_DB_POOL_MAX": "2"}, "VOICEGATE_DB_POOL_MIN"),
        ({"VOICEGATE_DB_CONNECT_TIMEOUT": "0"}, "VOICEGATE_DB_CONNECT_TIMEOUT"),
        ({"VOICEGATE_USER_CONCURRENCY": "0"}, "VOICEGATE_USER_CONCURRENCY must be at least 1"),
        ({"VOICEGATE_USER_STREAMS": "0"}, "VOICEGATE_USER_STREAMS must be at least 1"),
        ({"VOICEGATE_API_PROCESSES": "0"}, "VOICEGATE_API_PROCESSES must be at least 1"),
        ({"VOICEGATE_USER_CREATES": "0"}, "VOICEGATE_USER_CREATES must be at least 1"),
        ({"VOICEGATE_USER_CREATES": "many"}, "VOICEGATE_USER_CREATES"),
        ({"VOICEGATE_USER_OPEN_CONSENTS": "0"}, "VOICEGATE_USER_OPEN_CONSENTS must be at least 1"),
        ({"VOICEGATE_USER_DRAFT_VOICES": "-1"}, "VOICEGATE_USER_DRAFT_VOICES must be at least 1"),
        ({"VOICEGATE_USER_CHARACTERS": "0"}, "VOICEGATE_USER_CHARACTERS must be at least 1"),
        ({"VOICEGATE_USER_USAGE_WINDOW": "0"}, "VOICEGATE_USER_USAGE_WINDOW must be at least 1"),
        ({"VOICEGATE_USER_USAGE_WINDOW": "a day"}, "VOICEGATE_USER_USAGE_WINDOW"),
        ({"VOICEGATE_USER_QUEUED_JOBS": "0"}, "VOICEGATE_USER_QUEUED_JOBS must be at least 1"),
        ({"VOICEGATE_USER_CREATE_WINDOW": "0"}, "VOICEGATE_USER_CREATE_WINDOW must be a positive number of seconds"),
        ({"VOICEGATE_USER_CREATE_WINDOW": "-60"}, "VOICEGATE_USER_CREATE_WINDOW must be a positive number"),
        ({"VOICEGATE_USER_CREATE_WINDOW": "inf"}, "VOICEGATE_USER_CREATE_WINDOW must be a positive number"),
        ({"VOICEGATE_USER_CREATE_WINDOW": "nan"}, "VOICEGATE_USER_CREATE_WINDOW must be a positive number"),
        ({"VOICEGATE_USER_CREATE_WINDOW": "an hour"}, "VOICEGATE_USER_CREATE_WINDOW"),
        ({"VOICEGATE_CONSENT_PHRASE_SECONDS": "59"}, "VOICEGATE_CONSENT_PHRASE_SECONDS must be from 60 to 3600"),
        ({"VOICEGATE_CONSENT_PHRASE_SECONDS": "3601"}, "VOICEGATE_CONSENT_PHRASE_SECONDS must be from 60 to 3600"),
        ({"VOICEGATE_CONSENT_PHRASE_SECONDS": "ten minutes"}, "VOICEGATE_CONSENT_PHRASE_SECONDS"),
        ({"VOICEGATE_OWNERSHIP_THRESHOLD": "0.49"}, "VOICEGATE_OWNERSHIP_THRESHOLD must be a cosine from 0.50 to 0.99"),
        ({"VOICEGATE_OWNERSHIP_THRESHOLD": "1"}, "VOICEGATE_OWNERSHIP_THRESHOLD must be a cosine from 0.50 to 0.99"),
        ({"VOICEGATE_OWNERSHIP_THRESHOLD": "nan"}, "VOICEGATE_OWNERSHIP_THRESHOLD must be a cosine from 0.50 to 0.99"),
        ({"VOICEGATE_OWNERSHIP_THRESHOLD": "high"}, "VOICEGATE_OWNERSHIP_THRESHOLD"),
        ({"VOICEGATE_CPU_WORKERS": "0"}, "VOICEGATE_CPU_WORKERS must be at least 1"),
        ({"VOICEGATE_CLONE_CONCURRENCY": "0"}, "VOICEGATE_CLONE_CONCURRENCY must be at least 1"),
        ({"VOICEGATE_PROVIDER_CONCURRENCY": "0"}, "VOICEGATE_PROVIDER_CONCURRENCY must be at least 1"),
        ({"VOICEGATE_LOG_LEVEL": "LOUD"}, "VOICEGATE_LOG_LEVEL"),
        ({"VOICEGATE_LOG_FORMAT": "yaml"}, "VOICEGATE_LOG_FORMAT"),
        ({"VOICEGATE_STORAGE_WAIT_SECONDS": "an hour"}, "VOICEGATE_STORAGE_WAIT_SECONDS"),
        (
            {"VOICEGATE_STORAGE_WAIT_SECONDS": "0"},
            "VOICEGATE_STORAGE_WAIT_SECONDS must be a number of seconds, at least 1",
        ),
        ({"VOICEGATE_STORAGE_WAIT_SECONDS": "0.5"}, "VOICEGATE_STORAGE_WAIT_SECONDS must be .* at least 1"),
        ({"VOICEGATE_STORAGE_WAIT_SECONDS": "inf"}, "VOICEGATE_STORAGE_WAIT_SECONDS must be .* at least 1"),
        ({"VOICEGATE_STORAGE_VERSION_SECONDS": "-1"}, "VOICEGATE_STORAGE_VERSION_SECONDS must be .* from 0 to 60"),
        ({"VOICEGATE_STORAGE_VERSION_SECONDS": "61"}, "VOICEGATE_STORAGE_VERSION_SECONDS must be .* from 0 to 60"),
        ({"VOICEGATE_STORAGE_VERSION_SECONDS": "nan"}, "VOICEGATE_STORAGE_VERSION_SECONDS must be .* from 0 to 60"),
        ({"VOICEGATE_C2PA_CERT": "/etc/voicegate/chain.pem"}, "set both VOICEGATE_C2PA_CERT and VOICEGATE_C2PA_KEY"),
        ({"VOICEGATE_C2PA_KEY": "/etc/voicegate/key.pem"}, "set both VOICEGATE_C2PA_CERT and VOICEGATE_C2PA_KEY"),
        (
            {"VOICEGATE_C2PA_CERT": "/c.pem", "VOICEGATE_C2PA_KEY": "-----BEGIN PRIVATE KEY-----\nMIG..."},
            "VOICEGATE_C2PA_KEY must be the path of a PEM file, not the PEM text itself",
        ),
    ],
)
def test_invalid_environment_is_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_env(env)


def test_provider_settings_are_part_of_the_one_settings_object() -> None:
    settings = settings_from_env({"VOICE_PROVIDER": "local"})
    assert settings.providers is not None
    assert settings.providers.default_provider == "local"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOICE_PROVIDER": "elevenlabs"}, "ELEVENLABS_API_KEY is not set"),
        ({"VOICE_PROVIDER": "whisper"}, "VOICE_PROVIDER must be one of"),
        ({"QWEN_REGION": "cn", "DASHSCOPE_BASE_URL": "https://dashscope-intl.aliyuncs.com"}, "DASHSCOPE_BASE_URL"),
    ],
)
def test_a_provider_setting_that_does_not_fit_fails_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_env(env)


def test_c2pa_credentials_are_paths() -> None:
    env = {"VOICEGATE_C2PA_CERT": "/run/secrets/c2pa.pem", "VOICEGATE_C2PA_KEY": "/run/secrets/c2pa.key"}
    settings = settings_from_env(env)
    assert (settings.c2pa_cert, settings.c2pa_key) == (Path("/run/secrets/c2pa.pem"), Path("/run/secrets/c2pa.key"))
    assert settings.c2pa_trust_anchors is None


SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes of base64


def test_the_project_webhook_is_a_url_and_a_secret_that_never_shows() -> None:
    settings = settings_from_env(
        {"VOICEGATE_WEBHOOK_URL": "https://hooks.example.com/vg", "VOICEGATE_WEBHOOK_SECRET": SECRET}
    )
    assert settings.webhook_url == "https://hooks.example.com/vg"
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.reveal() == SECRET
    assert SECRET not in repr(settings)
    assert (settings.webhook_max_attempts, settings.webhook_retry_base_seconds) == (15, 5.0)
    assert settings.webhook_pending == 100
    assert settings_from_env({"VOICEGATE_WEBHOOK_PENDING": "7"}).webhook_pending == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOICEGATE_WEBHOOK_URL": "https://hooks.example.com"}, "set both VOICEGATE_WEBHOOK_URL and"),
        ({"VOICEGATE_WEBHOOK_SECRET": SECRET}, "set both VOICEGATE_WEBHOOK_URL and"),
        ({"VOICEGATE_WEBHOOK_URL": "http://hooks.example.com", "VOICEGATE_WEBHOOK_SECRET": SECRET}, "must use https"),
        ({"VOICEGATE_WEBHOOK_URL": "https://u:p@hooks.example.com", "VOICEGATE_WEBHOOK_SECRET": SECRET}, "credentials"),
        (
            {"VOICEGATE_WEBHOOK_URL": "https://h.example.com", "VOICEGATE_WEBHOOK_SECRET": "s3cret"},
            "starts with whsec_",
        ),
        ({"VOICEGATE_WEBHOOK_MAX_ATTEMPTS": "0"}, "VOICEGATE_WEBHOOK_MAX_ATTEMPTS must be at least 1"),
        ({"VOICEGATE_WEBHOOK_RETRY_BASE_SECONDS": "0"}, "VOICEGATE_WEBHOOK_RETRY_BASE_SECONDS must be positive"),
        ({"VOICEGATE_WEBHOOK_PENDING": "0"}, "VOICEGATE_WEBHOOK_PENDING must be from 1 to 100000"),
        ({"VOICEGATE_WEBHOOK_PENDING": "100001"}, "VOICEGATE_WEBHOOK_PENDING must be from 1 to 100000"),
    ],
)
def test_a_project_webhook_that_does_not_fit_fails_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as raised:
        settings_from_env(env)
    assert "s3cret" not in str(raised.value)


def test_every_growing_table_has_a_bound_by_default_and_zero_keeps_for_ever() -> None:
    retention = settings_from_env({}).retention
    assert (retention.queue_archive_days, retention.audit_days, retention.usage_days) == (3.0, 400.0, 400.0)
    assert (retention.attempt_history_days, retention.speech_days, retention.job_days) == (90.0, 90.0, 30.0)
    assert retention.batch == 1000
    assert settings_from_env({"VOICEGATE_AUDIT_RETENTION_DAYS": "0"}).retention.audit_days == 0


@pytest.mark.parametrize(
    "var",
    [
        "VOICEGATE_QUEUE_ARCHIVE_RETENTION_DAYS",
        "VOICEGATE_AUDIT_RETENTION_DAYS",
        "VOICEGATE_ATTEMPT_HISTORY_RETENTION_DAYS",
        "VOICEGATE_SPEECH_RETENTION_DAYS",
        "VOICEGATE_JOB_RETENTION_DAYS",
        "VOICEGATE_USAGE_RETENTION_DAYS",
    ],
)
@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_retention_is_a_finite_number_of_days(var: str, value: str) -> None:
    with pytest.raises(SettingsError, match=var):
        settings_from_env({var: value})


def test_the_usage_ledger_outlives_the_current_window_and_the_last() -> None:
    with pytest.raises(SettingsError, match="VOICEGATE_USAGE_RETENTION_DAYS"):
        settings_from_env({"VOICEGATE_USAGE_RETENTION_DAYS": "1.5"})
    with pytest.raises(SettingsError, match="VOICEGATE_USAGE_RETENTION_DAYS"):
        settings_from_env({"VOICEGATE_USAGE_RETENTION_DAYS": "5", "VOICEGATE_USER_USAGE_WINDOW": "259200"})
    assert settings_from_env({"VOICEGATE_USAGE_RETENTION_DAYS": "2"}).retention.usage_days == 2
    assert settings_from_env({"VOICEGATE_USAGE_RETENTION_DAYS": "0"}).retention.usage_days == 0


@pytest.mark.parametrize(("value", "ok"), [("9", False), ("10", True), ("100000", True), ("100001", False)])
def test_a_retention_batch_is_from_ten_to_a_hundred_thousand_rows(value: str, ok: bool) -> None:
    if ok:
        assert settings_from_env({"VOICEGATE_RETENTION_BATCH": value}).retention_batch == int(value)
    else:
        with pytest.raises(SettingsError, match="VOICEGATE_RETENTION_BATCH"):
            settings_from_env({"VOICEGATE_RETENTION_BATCH": value})
