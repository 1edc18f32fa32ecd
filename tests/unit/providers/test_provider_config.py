"""Provider settings: start-up checks, redaction, and the registry's refusal of unkeyed providers."""

from __future__ import annotations

import httpx
import pytest

from backend.cpu import CpuExecutor
from backend.errors import ProviderNotConfigured
from backend.providers.config import Provider, provider_settings_from_env
from backend.providers.env import ProviderConfigError
from backend.providers.local.provider import LocalProvider
from backend.providers.qwen import QwenProvider
from backend.providers.registry import build_provider
from backend.providers.selfhosted import SelfhostedProvider
from backend.secret import Secret

QWEN = "sk-abcdef0123456789"


def test_defaults_to_local_without_any_key() -> None:
    settings = provider_settings_from_env({})
    assert settings.default_provider == "local"
    assert settings.sections["qwen"].base_url == "https://dashscope-intl.aliyuncs.com"
    assert settings.sections["cartesia"].version == "2026-03-01"
    assert settings.sections["cartesia"].model == "sonic-3.5"
    assert settings.sections["elevenlabs"].base_url == "https://api.elevenlabs.io"


@pytest.mark.parametrize("model", ["sonic-2", "sonic-3-2026-01-12", "sonic-3.5-2026-05-04", "sonic-turbo"])
def test_cartesia_model_is_a_setting(model: str) -> None:
    assert provider_settings_from_env({"CARTESIA_MODEL": f" {model} "}).sections["cartesia"].model == model


def test_region_picks_host_and_workspace_domains_fit() -> None:
    cn = provider_settings_from_env({"QWEN_REGION": "cn", "DASHSCOPE_API_KEY": QWEN})
    assert cn.sections["qwen"].base_url == "https://dashscope.aliyuncs.com"
    ws = provider_settings_from_env(
        {"QWEN_REGION": "intl", "DASHSCOPE_BASE_URL": "https://ws1.ap-southeast-1.maas.aliyuncs.com/"}
    )
    assert ws.sections["qwen"].base_url == "https://ws1.ap-southeast-1.maas.aliyuncs.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QWEN_REGION": "eu"}, "QWEN_REGION must be 'intl' or 'cn'"),
        ({"QWEN_REGION": "cn", "DASHSCOPE_BASE_URL": "https://dashscope-intl.aliyuncs.com"}, "'intl' region"),
        (
            {"QWEN_REGION": "intl", "DASHSCOPE_BASE_URL": "https://w.cn-beijing.maas.aliyuncs.com"},
            "'cn' region",
        ),
        ({"DASHSCOPE_API_KEY": "abc123"}, "expected sk-"),
        ({"DASHSCOPE_API_KEY": "sk-abc def"}, "whitespace"),
        ({"DASHSCOPE_BASE_URL": "http://dashscope-intl.aliyuncs.com"}, "must use https"),
        ({"ELEVENLABS_BASE_URL": "https://api.elevenlabs.io/v1"}, "bare origin"),
        ({"CARTESIA_API_KEY": "sk_car_admin_x1"}, "admin key"),
        ({"CARTESIA_VERSION": "2024-06-10"}, "CARTESIA_VERSION must be one of"),
        ({"CARTESIA_MODEL": "sonic-2-2025-03-07"}, "'sonic-2-2025-03-07' was sunset by Cartesia; use 'sonic-3.5'"),
        ({"CARTESIA_MODEL": "sonic-english"}, "was sunset by Cartesia"),
        ({"CARTESIA_MODEL": "sonic-9"}, "CARTESIA_MODEL must be one of sonic-3.5, sonic-3, sonic-latest"),
        ({"VOICE_PROVIDER": "openai"}, "VOICE_PROVIDER must be one of"),
        ({"VOICE_PROVIDER": "elevenlabs"}, "ELEVENLABS_API_KEY is not set"),
    ],
)
def test_misfits_fail_at_start_up_with_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message) as err:
        provider_settings_from_env(env)
    assert isinstance(err.value, ValueError)
    for value in env.values():
        if value.startswith("sk"):
            assert value not in str(err.value)


def test_secrets_never_show() -> None:
    settings = provider_settings_from_env(
        {"DASHSCOPE_API_KEY": QWEN, "ELEVENLABS_API_KEY": "el-secret-1", "CARTESIA_API_KEY": "sk_car_zzz9"}
    )
    text = repr(settings) + str(settings)
    for secret in (QWEN, "el-secret-1", "sk_car_zzz9"):
        assert secret not in text
    assert settings.sections["qwen"].api_key == Secret(QWEN)
    assert settings.sections["qwen"].api_key is not None
    assert settings.sections["qwen"].api_key.reveal() == QWEN


async def test_registry_builds_keyed_providers_and_refuses_missing_keys(cpu: CpuExecutor) -> None:
    settings = provider_settings_from_env({"DASHSCOPE_API_KEY": QWEN})
    async with httpx.AsyncClient() as client:
        assert isinstance(build_provider("qwen", settings, client, cpu=cpu), QwenProvider)
        assert isinstance(build_provider("local", settings, client, cpu=cpu), LocalProvider)
        with pytest.raises(ProviderConfigError, match="set CARTESIA_API_KEY"):
            build_provider("cartesia", settings, client, cpu=cpu)
        with pytest.raises(ProviderConfigError, match="unknown voice provider"):
            build_provider("nope", settings, client, cpu=cpu)


def test_selfhosted_is_usable_once_its_base_url_is_set_and_keeps_a_path_prefix() -> None:
    assert not provider_settings_from_env({}).has_key("selfhosted")
    settings = provider_settings_from_env(
        {
            "VOICE_PROVIDER": "selfhosted",
            "SELFHOSTED_BASE_URL": "https://tts.example.org/speech/",
            "SELFHOSTED_API_KEY": "sk-local-1",
            "SELFHOSTED_MODEL": "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
        }
    )
    selfhosted = settings.sections["selfhosted"]
    assert settings.has_key("selfhosted")
    assert (selfhosted.base_url, selfhosted.model) == (
        "https://tts.example.org/speech",
        "Qwen/Qwen3-TTS-12Hz-1.7B-Base",
    )
    assert (selfhosted.voice_registry, selfhosted.profile, selfhosted.timeout_s) == ("auto", "openai", 120.0)
    assert "sk-local-1" not in repr(settings)
    modal = provider_settings_from_env(
        {
            "SELFHOSTED_BASE_URL": "https://me--tts-serve.modal.run",
            "SELFHOSTED_PROFILE": "modal",
            "MODAL_KEY": "wk-abc",
            "MODAL_SECRET": "ws-def",
            "SELFHOSTED_VOICE_REGISTRY": "inline",
        }
    ).sections["selfhosted"]
    assert (modal.profile, modal.voice_registry, modal.timeout_s) == ("modal", "inline", 600.0)
    assert "ws-def" not in repr(modal)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOICE_PROVIDER": "selfhosted"}, "SELFHOSTED_BASE_URL is not set"),
        ({"SELFHOSTED_BASE_URL": "http://gpu.lan:8091"}, "must use https"),
        ({"SELFHOSTED_BASE_URL": "https://u:p@gpu.example.org"}, "credentials"),
        (
            {"SELFHOSTED_VOICE_REGISTRY": "sometimes"},
            "SELFHOSTED_VOICE_REGISTRY must be one of auto, registry, chatterbox, inline",
        ),
        ({"SELFHOSTED_PROFILE": "lambda"}, "SELFHOSTED_PROFILE must be one of openai, modal"),
        ({"SELFHOSTED_PROFILE": "modal", "MODAL_KEY": "wk-abc"}, "set both MODAL_KEY and MODAL_SECRET"),
        ({"MODAL_KEY": "wk-abc", "MODAL_SECRET": "ws-def"}, "only with SELFHOSTED_PROFILE=modal"),
        ({"SELFHOSTED_TIMEOUT_SECONDS": "0"}, "SELFHOSTED_TIMEOUT_SECONDS must be a positive number"),
        ({"SELFHOSTED_TIMEOUT_SECONDS": "soon"}, "SELFHOSTED_TIMEOUT_SECONDS must be a positive number"),
        ({"SELFHOSTED_API_KEY": "sk local"}, "whitespace"),
    ],
)
def test_selfhosted_misfits_fail_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message) as err:
        provider_settings_from_env(env)
    assert "ws-def" not in str(err.value)


async def test_registry_builds_selfhosted_only_with_its_base_url(cpu: CpuExecutor) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderConfigError, match="set SELFHOSTED_BASE_URL"):
            build_provider("selfhosted", provider_settings_from_env({}), client, cpu=cpu)
        settings = provider_settings_from_env({"SELFHOSTED_BASE_URL": "http://127.0.0.1:8091"})
        assert isinstance(build_provider("selfhosted", settings, client, cpu=cpu), SelfhostedProvider)


def test_a_provider_not_configured_is_named_as_the_user_sent_it_with_the_setting_that_enables_it() -> None:
    settings = provider_settings_from_env({})
    with pytest.raises(ProviderNotConfigured) as refused:
        settings.usable(Provider.CARTESIA)
    assert refused.value.detail == (
        "Voice provider 'cartesia' is not configured on this server (its operator sets CARTESIA_API_KEY)."
    )
    assert settings.usable(Provider.LOCAL) == "local"
    assert type(settings.usable(Provider.LOCAL)) is str
