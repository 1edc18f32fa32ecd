"""What a deployment passes the providers and what the README names are the list's (backend/providers/config.py
PROVIDERS): compose.yaml's environment and deploy/k8s's ConfigMap and Secret carry each provider's key variable
and secrets, and no other variable a provider reads; the README's provider table has a row per provider. A
provider added to the list without them, or left in them after it leaves the list, fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

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


def deploy_variables() -> set[str]:
    return {variable for entry in PROVIDERS for variable in entry.deploy_variables}


def provider_variables(names: set[str]) -> set[str]:
    """Of `names`, those a provider reads, or that look like a provider's key (so one of a provider gone counts)."""
    return {name for name in names if name in read_variables() or name.endswith("_API_KEY")}


def test_a_provider_reads_every_variable_the_list_says_it_is_deployed_with() -> None:
    assert deploy_variables() <= read_variables()


def test_compose_passes_each_providers_key_and_secrets() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    assert provider_variables(set(compose["x-environment"])) == deploy_variables()


def test_the_kubernetes_config_and_secret_carry_each_providers_key_and_secrets() -> None:
    k8s = REPO / "deploy" / "k8s"
    [config] = yaml.safe_load_all((k8s / "configmap.yaml").read_text())
    secret = next(
        doc for doc in yaml.safe_load_all((k8s / "secret.yaml").read_text()) if doc["metadata"]["name"] == "voicegate"
    )
    passed = set(config["data"]) | set(secret["stringData"])
    assert provider_variables(passed) == deploy_variables()
    # Keys and secrets go in the Secret, never the ConfigMap.
    secrets = {variable for entry in PROVIDERS for variable in entry.secrets}
    secrets |= {entry.key_variable for entry in PROVIDERS if entry.key_variable and entry.key_variable.endswith("_KEY")}
    assert not secrets & set(config["data"])


def test_the_readmes_provider_table_has_a_row_per_provider() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Use a real provider", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| provider")]
    named = [re.fullmatch(r"`([a-z0-9_]+)`", row.split("|")[2].strip()) for row in rows]
    assert sorted(match[1] if match else row for match, row in zip(named, rows, strict=True)) == sorted(PROVIDER_NAMES)


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
