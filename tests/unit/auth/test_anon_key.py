"""SUPABASE_PUBLISHABLE_KEY / SUPABASE_ANON_KEY: the one key every browser gets, so anything with more
power than `anon` is refused before it could be served."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from backend.auth.config import AuthConfigError, auth_settings_from_env

PUBLISHABLE = "sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH"
ANON_JWT = jwt.encode({"iss": "supabase", "ref": "abc", "role": "anon", "exp": 4_102_444_800}, "k" * 32)
SERVICE_JWT = jwt.encode({"iss": "supabase", "ref": "abc", "role": "service_role", "exp": 4_102_444_800}, "k" * 32)
PRODUCTION = {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_SECRET_KEY": "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_x"}


def load(tmp_path: Path, **env: str) -> str | None:
    return auth_settings_from_env({**PRODUCTION, **env}, None).anon_key


def test_a_publishable_key_or_an_anon_jwt_is_taken(tmp_path: Path) -> None:
    assert load(tmp_path) is None
    assert load(tmp_path, SUPABASE_PUBLISHABLE_KEY=PUBLISHABLE) == PUBLISHABLE
    assert load(tmp_path, SUPABASE_ANON_KEY=ANON_JWT) == ANON_JWT
    assert load(tmp_path, SUPABASE_ANON_KEY=ANON_JWT, SUPABASE_PUBLISHABLE_KEY=PUBLISHABLE) == PUBLISHABLE


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SUPABASE_ANON_KEY", SERVICE_JWT),
        ("SUPABASE_PUBLISHABLE_KEY", SERVICE_JWT),
        ("SUPABASE_PUBLISHABLE_KEY", "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"),
        ("SUPABASE_ANON_KEY", "not.a.jwt"),
        ("SUPABASE_ANON_KEY", "anon key with spaces"),
    ],
)
def test_a_key_that_is_not_public_is_refused_without_echoing_it(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(AuthConfigError) as refused:
        load(tmp_path, **{variable: value})
    assert variable in str(refused.value)
    assert value not in str(refused.value)


def test_a_bare_prefix_is_not_a_key(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="SUPABASE_PUBLISHABLE_KEY"):
        load(tmp_path, SUPABASE_PUBLISHABLE_KEY="sb_publishable_")


def test_a_bad_second_key_is_refused_even_beside_a_good_one(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="SUPABASE_ANON_KEY"):
        load(tmp_path, SUPABASE_PUBLISHABLE_KEY=PUBLISHABLE, SUPABASE_ANON_KEY=SERVICE_JWT)
