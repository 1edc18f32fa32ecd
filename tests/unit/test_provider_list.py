"""The deploy files and the README need no edit when a provider joins the list (backend/providers/config.py
PROVIDERS), and hold nothing of one that left it: compose.yaml hands voicegate's containers the whole env file and
names no provider's variable; deploy/k8s's pods read the ConfigMap and the Secret whole, which name no provider
variable voicegate does not read and keep keys out of the ConfigMap; the README names only listed providers and
their variables and points at the generated Providers table of docs/settings.md, which documents every variable
a provider reads."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

import docs_hooks
from backend.providers.config import PROVIDER_NAMES, PROVIDERS

REPO = Path(__file__).resolve().parents[2]


class _Reads(Mapping[str, str]):
    """An empty environment that notes every variable asked of it."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def read_variables() -> set[str]:
    """Every variable some provider's settings reader reads."""
    env = _Reads()
    for entry in PROVIDERS:
        entry.read_settings(env)
    return env.asked


def secret_variables() -> set[str]:
    """The variables of the list that hold secrets: the providers' keys and their other secrets."""
    keys = {entry.key_variable for entry in PROVIDERS if entry.key_variable and entry.key_variable.endswith("_KEY")}
    return keys | {variable for entry in PROVIDERS for variable in entry.secrets}


def provider_variables(names: set[str]) -> set[str]:
    """Of `names`, those a provider reads, or that look like a provider's key (so one of a provider gone counts)."""
    return {name for name in names if name in read_variables() or name.endswith("_API_KEY")}


def voicegate_services() -> dict[str, dict[str, Any]]:
    """compose.yaml's services that run voicegate's image (its anchors resolved), by name."""
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    return {name: service for name, service in services.items() if name != "db"}


def test_a_provider_reads_every_variable_the_list_calls_its_key_or_secret() -> None:
    named = {entry.key_variable for entry in PROVIDERS if entry.key_variable} | secret_variables()
    assert named <= read_variables()


def test_compose_hands_every_voicegate_container_the_env_file_init_writes() -> None:
    # The env file is how a provider's key reaches the containers unnamed: every service must read it, and by
    # default where deploy/compose/init.sh writes it (`$out/env`, out defaulting to .compose).
    init = (REPO / "deploy" / "compose" / "init.sh").read_text()
    out = re.search(r"^out=\$\{VOICEGATE_COMPOSE_DIR:-([^}]+)\}$", init, re.M)
    assert out, "init.sh no longer says where it writes"
    assert 'env_file = out / "env"' in (REPO / "deploy" / "compose" / "init.py").read_text()
    services = voicegate_services()
    assert {"api1", "api2", "worker", "migrate", "storage"} <= services.keys()
    for name, service in services.items():
        assert service["env_file"] == [f"${{VOICEGATE_ENV_FILE:-./{out[1]}/env}}"], name


def test_compose_names_no_providers_variable() -> None:
    # `environment` wins over the env file: a provider's variable named there would be the per-provider list
    # again, and one set to a value there would hide the env file's.
    for name, service in voicegate_services().items():
        assert not provider_variables(set(service["environment"])), name


def test_the_kubernetes_files_name_no_stale_provider_variable_and_no_key_in_the_config_map() -> None:
    k8s = REPO / "deploy" / "k8s"
    [config] = yaml.safe_load_all((k8s / "configmap.yaml").read_text())
    secret = next(
        doc for doc in yaml.safe_load_all((k8s / "secret.yaml").read_text()) if doc["metadata"]["name"] == "voicegate"
    )
    passed = set(config["data"]) | set(secret["stringData"])
    assert provider_variables(passed) <= read_variables()
    # Keys and secrets go in the Secret, never the ConfigMap.
    assert not {name for name in config["data"] if name in secret_variables() or name.endswith("_API_KEY")}


def readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_names_only_listed_providers_and_their_variables() -> None:
    readme = (REPO / "README.md").read_text()
    named = re.findall(r'(?:VOICE_PROVIDER=|provider=|"provider":\s*")([a-z0-9_]+)', readme)
    assert named
    assert set(named) <= set(PROVIDER_NAMES)
    variables = set(re.findall(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b", readme))
    assert provider_variables(variables) <= read_variables()


def test_the_readme_sends_a_newcomer_to_the_generated_providers_table() -> None:
    section = readme_section("Use a real provider")
    assert "(docs/settings.md#providers)" in section
    assert "(docs/providers.md)" in section
    settings = (REPO / "docs" / "settings.md").read_text()
    assert "\n## Providers\n" in settings
    assert docs_hooks.PROVIDER_SETTINGS in settings


def test_every_variable_a_provider_reads_is_documented_in_the_settings_page() -> None:
    env = _Reads()
    for entry in PROVIDERS:
        env.asked.clear()
        entry.read_settings(env)
        documented = {variable for doc in entry.documented for variable in doc.variables}
        assert documented == env.asked, entry.name
    rows = docs_hooks.provider_settings_rows()
    for name in PROVIDER_NAMES:
        assert f"`{name}`" in rows.splitlines()[0]
    for variable in read_variables():
        assert f"`{variable}`" in rows
