"""Auth settings: embedded secret persistence, required variables outside embedded mode, redaction."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import jwt
import pytest

from backend.auth.config import AuthConfigError, AuthSettings, auth_settings_from_env
from backend.auth.verify import TokenVerifier
from backend.errors import Unauthorized
from backend.secret import Secret
from standins.dev_keys import DataDirKeys

ENV_SECRET = "an-env-provided-project-jwt-secret-0123456789"
SB_SECRET = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"
ROLE_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


def test_embedded_generates_a_private_secret_once_and_reuses_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    first = auth_settings_from_env({}, DataDirKeys(data_dir))
    secret_file = data_dir / "jwt_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert first.jwt_secret is not None
    assert secret_file.read_text().strip() == first.jwt_secret.reveal()
    assert len(first.jwt_secret.reveal()) >= 64  # 48 random bytes, url-safe base64
    second = auth_settings_from_env({}, DataDirKeys(data_dir))
    assert second.jwt_secret == first.jwt_secret
    assert [p.name for p in data_dir.iterdir()] == ["jwt_secret"]  # no temporary file left behind


def test_embedded_secrets_differ_between_data_dirs(tmp_path: Path) -> None:
    one = auth_settings_from_env({}, DataDirKeys(tmp_path / "a"))
    two = auth_settings_from_env({}, DataDirKeys(tmp_path / "b"))
    assert one.jwt_secret != two.jwt_secret


def test_embedded_derives_a_stable_dev_service_role_key(tmp_path: Path) -> None:
    settings = auth_settings_from_env({}, DataDirKeys(tmp_path))
    assert settings.jwt_secret is not None
    assert settings.service_role_key is not None
    claims = jwt.decode(settings.service_role_key.reveal(), settings.jwt_secret.reveal(), algorithms=["HS256"])
    assert claims["role"] == "service_role"
    assert claims["iss"] == "supabase-demo"
    assert claims["exp"] > 4_000_000_000
    again = auth_settings_from_env({}, DataDirKeys(tmp_path))
    assert again.service_role_key == settings.service_role_key


async def test_embedded_mints_the_anon_key_as_the_supabase_cli_does(tmp_path: Path) -> None:
    """supabase/cli pkg/config/apikeys.go `generateJWT("anon")`: `{"iss": "supabase-demo", "role": "anon", exp}`,
    HS256 over the project secret; the same key at every start, and one the service-key check refuses."""
    settings = auth_settings_from_env({}, DataDirKeys(tmp_path))
    assert settings.jwt_secret is not None
    assert settings.anon_key is not None
    assert jwt.get_unverified_header(settings.anon_key)["alg"] == "HS256"
    claims = jwt.decode(settings.anon_key, settings.jwt_secret.reveal(), algorithms=["HS256"])
    assert list(claims) == ["iss", "role", "exp"]
    assert (claims["iss"], claims["role"]) == ("supabase-demo", "anon")
    assert auth_settings_from_env({}, DataDirKeys(tmp_path)).anon_key == settings.anon_key
    async with httpx.AsyncClient() as http:
        verifier = TokenVerifier(settings, http)
        assert verifier.api_key_role(settings.anon_key) == "anon"
        with pytest.raises(Unauthorized):
            verifier.verify_service(settings.anon_key)
        with pytest.raises(Unauthorized):
            await verifier.verify_user(settings.anon_key)


def test_embedded_prefers_the_environment(tmp_path: Path) -> None:
    env = {"SUPABASE_JWT_SECRET": ENV_SECRET, "SUPABASE_SECRET_KEY": SB_SECRET}
    settings = auth_settings_from_env(env, DataDirKeys(tmp_path))
    assert settings.jwt_secret == Secret(ENV_SECRET)
    assert settings.secret_key == Secret(SB_SECRET)
    assert settings.service_role_key is None  # an explicit service key means no derived one
    assert not (tmp_path / "jwt_secret").exists()


def test_embedded_refuses_a_secret_file_others_can_read(tmp_path: Path) -> None:
    auth_settings_from_env({}, DataDirKeys(tmp_path))
    (tmp_path / "jwt_secret").chmod(0o644)
    with pytest.raises(AuthConfigError, match="chmod 600"):
        auth_settings_from_env({}, DataDirKeys(tmp_path))


def test_embedded_refuses_a_truncated_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "jwt_secret"
    path.write_text("short\n")
    path.chmod(0o600)
    with pytest.raises(AuthConfigError, match="at least 32 characters"):
        auth_settings_from_env({}, DataDirKeys(tmp_path))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SUPABASE_SECRET_KEY": SB_SECRET}, "SUPABASE_JWT_SECRET"),
        ({"SUPABASE_SECRET_KEY": SB_SECRET}, "SUPABASE_URL"),
        ({"SUPABASE_JWT_SECRET": ENV_SECRET}, "SUPABASE_SECRET_KEY"),
        ({"SUPABASE_URL": "https://abc.supabase.co"}, "SUPABASE_SERVICE_ROLE_KEY"),
        ({"SUPABASE_JWT_SECRET": "", "SUPABASE_URL": "  ", "SUPABASE_SECRET_KEY": SB_SECRET}, "SUPABASE_URL"),
    ],
)
def test_non_embedded_requires_verification_and_service_key(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    with pytest.raises(AuthConfigError, match=variable):
        auth_settings_from_env(env, None)
    assert not (tmp_path / "jwt_secret").exists()  # nothing is generated outside embedded mode


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SUPABASE_JWT_SECRET": "too-short"}, "SUPABASE_JWT_SECRET must be at least 32"),
        ({"SUPABASE_SECRET_KEY": "sk_live_abc"}, "SUPABASE_SECRET_KEY must be a secret API key"),
        ({"SUPABASE_SECRET_KEY": "sb_secret_"}, "SUPABASE_SECRET_KEY must be a secret API key"),
        ({"SUPABASE_SECRET_KEY": "sb_secret_a b"}, "SUPABASE_SECRET_KEY contains whitespace"),
        ({"SUPABASE_SERVICE_ROLE_KEY": "not-a-jwt"}, "SUPABASE_SERVICE_ROLE_KEY must be the service_role JWT"),
        ({"SUPABASE_URL": "ftp://abc.supabase.co"}, "SUPABASE_URL must be an http"),
        ({"SUPABASE_URL": "http://abc.supabase.co"}, "SUPABASE_URL must use https"),
        ({"SUPABASE_URL": "https://u:p@abc.supabase.co"}, "SUPABASE_URL must not carry credentials"),
    ],
)
def test_malformed_values_are_named_not_echoed(tmp_path: Path, env: dict[str, str], message: str) -> None:
    full = {"SUPABASE_JWT_SECRET": ENV_SECRET, "SUPABASE_SECRET_KEY": SB_SECRET, **env}
    with pytest.raises(AuthConfigError, match=message) as caught:
        auth_settings_from_env(full, None)
    for value in env.values():
        if len(value) > 10:
            assert value not in str(caught.value)


def test_non_embedded_settings(tmp_path: Path) -> None:
    env = {
        "SUPABASE_URL": "https://abc.supabase.co/",
        "SUPABASE_SERVICE_ROLE_KEY": ROLE_KEY,
        "SUPABASE_SECRET_KEY": SB_SECRET,
    }
    settings = auth_settings_from_env(env, None)
    assert settings.jwt_secret is None
    assert settings.jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"
    assert settings.service_role_key == Secret(ROLE_KEY)
    assert auth_settings_from_env(
        {"SUPABASE_URL": "http://127.0.0.1:54321", "SUPABASE_SECRET_KEY": SB_SECRET}, None
    ).jwks_url == ("http://127.0.0.1:54321/auth/v1/.well-known/jwks.json")
    assert AuthSettings(jwt_secret=Secret(ENV_SECRET)).jwks_url is None


@pytest.mark.parametrize(
    ("env", "issuer"),
    [
        # A hosted project's Auth server signs with its own URL (reference §3.1).
        ({"SUPABASE_URL": "https://abc.supabase.co/"}, "https://abc.supabase.co/auth/v1"),
        # A self-hosted or local one sets GOTRUE_JWT_ISSUER, which its URL does not tell: unchecked ...
        ({"SUPABASE_URL": "http://127.0.0.1:54321"}, None),
        ({"SUPABASE_URL": "https://supabase.example.com"}, None),
        ({"SUPABASE_URL": "https://gateway.example.com/supabase"}, None),
        ({"SUPABASE_JWT_SECRET": ENV_SECRET}, None),
        # ... unless named; a named issuer wins over the derived one.
        (
            {"SUPABASE_URL": "https://supabase.example.com", "SUPABASE_JWT_ISSUER": "https://auth.example.com/auth/v1"},
            "https://auth.example.com/auth/v1",
        ),
        ({"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_JWT_ISSUER": "supabase"}, "supabase"),
    ],
)
def test_the_issuer_user_tokens_must_name(tmp_path: Path, env: dict[str, str], issuer: str | None) -> None:
    settings = auth_settings_from_env({"SUPABASE_SECRET_KEY": SB_SECRET, **env}, None)
    assert settings.issuer == issuer


def test_embedded_mode_checks_no_issuer(tmp_path: Path) -> None:
    env = {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_JWT_ISSUER": "https://abc.supabase.co/auth/v1"}
    assert auth_settings_from_env(env, DataDirKeys(tmp_path)).issuer is None


def test_an_issuer_with_whitespace_is_refused(tmp_path: Path) -> None:
    env = {"SUPABASE_JWT_SECRET": ENV_SECRET, "SUPABASE_SECRET_KEY": SB_SECRET, "SUPABASE_JWT_ISSUER": "a b"}
    with pytest.raises(AuthConfigError, match="SUPABASE_JWT_ISSUER"):
        auth_settings_from_env(env, None)


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    env = {
        "SUPABASE_JWT_SECRET": ENV_SECRET,
        "SUPABASE_SERVICE_ROLE_KEY": ROLE_KEY,
        "SUPABASE_SECRET_KEY": SB_SECRET,
    }
    settings = auth_settings_from_env(env, None)
    text = repr(settings) + str(settings) + repr(settings.jwt_secret) + str(settings.secret_key)
    for value in env.values():
        assert value not in text
    assert "**********" in text
    embedded = auth_settings_from_env({}, DataDirKeys(tmp_path / "e"))
    assert embedded.jwt_secret is not None
    assert embedded.service_role_key is not None
    assert embedded.jwt_secret.reveal() not in repr(embedded)
    assert embedded.service_role_key.reveal() not in repr(embedded)


def test_secret_matching_is_exact() -> None:
    secret = Secret(SB_SECRET)
    assert secret.matches(SB_SECRET)
    assert not secret.matches(SB_SECRET + "x")
    assert not secret.matches(SB_SECRET[:-1])
    assert not secret.matches("sb_secret_ünïcode")
    assert secret != SB_SECRET  # a Secret only ever equals another Secret


def test_concurrent_first_start_keeps_the_winners_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    winner = "a-secret-written-by-another-process-at-the-same-moment"
    real_link = os.link

    def lose_the_race(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        # Another process publishes its secret between our existence check and our link.
        Path(dst).write_text(winner + "\n")
        Path(dst).chmod(0o600)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", lose_the_race)
    settings = auth_settings_from_env({}, DataDirKeys(tmp_path))
    assert settings.jwt_secret == Secret(winner)
    assert [p.name for p in tmp_path.iterdir()] == ["jwt_secret"]
