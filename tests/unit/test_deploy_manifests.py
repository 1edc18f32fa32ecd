"""The Kubernetes manifests (deploy/k8s) and compose.yaml say what voicegate needs: real subcommands, probes on
the routes that exist, non-root and read-only containers, disruption budgets and Services that select the pods
they mean, and a KEDA trigger that measures voicegate's own queues."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from backend.settings import Settings, env_var
from voicegate.cli import _parser

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SOURCES = [
    *(REPO / "backend").rglob("*.py"),
    *(REPO / "standins").rglob("*.py"),
    *(REPO / "queue_consumers").rglob("*.py"),
]


def manifests() -> list[dict[str, Any]]:
    """Every resource the kustomization applies, in its order."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((K8S / name).read_text())]


def resource(kind: str, name: str) -> dict[str, Any]:
    [found] = [doc for doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def pod_specs() -> dict[str, dict[str, Any]]:
    """The pod templates of the Deployments and the Job, by workload name."""
    return {
        doc["metadata"]["name"]: doc["spec"]["template"] for doc in manifests() if doc["kind"] in {"Deployment", "Job"}
    }


def subcommand(args: list[str]) -> str:
    """The `voicegate` subcommand these container args run (argparse exits on an unknown one)."""
    return str(_parser().parse_args(args).run.__name__).lstrip("_")


def test_every_file_is_applied_and_every_workload_runs_a_real_subcommand() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    commands = {name: subcommand(spec["spec"]["containers"][0]["args"]) for name, spec in pod_specs().items()}
    assert commands == {"voicegate-migrate": "migrate", "voicegate-api": "serve", "voicegate-worker": "worker"}


def test_containers_run_as_a_non_root_user_on_a_read_only_root_with_tmp_writable() -> None:
    for name, template in pod_specs().items():
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name  # the Containerfile's USER
        assert pod["automountServiceAccountToken"] is False, name
        [container] = pod["containers"]
        assert container["image"] == "voicegate", name  # the kustomization's `images` entry sets the real one
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name  # noqa: S108 - the pod's own scratch directory
        # Every key of the ConfigMap and the Secret reaches the pod unnamed (a provider's key added to the Secret).
        refs = {(kind, ref["name"]) for source in container["envFrom"] for kind, ref in source.items()}
        assert refs == {("configMapRef", "voicegate"), ("secretRef", "voicegate")}, name


def test_the_api_is_ready_on_readyz_alive_on_healthz_and_selected_by_its_service() -> None:
    api = resource("Deployment", "voicegate-api")
    [container] = api["spec"]["template"]["spec"]["containers"]
    health_routes = re.findall(r'@get\(\s*"(/\w+)"', (REPO / "backend" / "http" / "routes" / "health.py").read_text())
    assert {"/readyz", "/healthz"} <= set(health_routes)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [port] = container["ports"]
    config = resource("ConfigMap", "voicegate")["data"]
    assert port["containerPort"] == int(config["VOICEGATE_PORT"])
    assert config["VOICEGATE_HOST"] == "0.0.0.0"  # noqa: S104 - a pod's port is reached from outside it
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"]
    service = resource("Service", "voicegate-api")
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert api["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_each_disruption_budget_selects_exactly_one_deployments_pods() -> None:
    deployments = {
        doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"]
        for doc in manifests()
        if doc["kind"] == "Deployment"
    }
    budgets = [doc for doc in manifests() if doc["kind"] == "PodDisruptionBudget"]
    covered = []
    for budget in budgets:
        selector = budget["spec"]["selector"]["matchLabels"]
        matched = [name for name, labels in deployments.items() if selector.items() <= labels.items()]
        assert len(matched) == 1, (budget["metadata"]["name"], matched)
        covered += matched
    assert sorted(covered) == sorted(deployments)
    api_budget = resource("PodDisruptionBudget", "voicegate-api")["spec"]
    assert api_budget["minAvailable"] < resource("Deployment", "voicegate-api")["spec"]["replicas"]


def test_keda_scales_the_worker_deployment_on_every_work_queue_and_no_other_name() -> None:
    scaled = resource("ScaledObject", "voicegate-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "voicegate-worker"
    resource("Deployment", scaled["scaleTargetRef"]["name"])
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    [trigger] = scaled["triggers"]
    assert trigger["type"] == "postgresql"
    query = trigger["metadata"]["query"]
    # What it counts is run against the migrated queues in tests/integration/test_queues.py; here, that it spells
    # no queue of its own, so a new consumer leaves this file alone.
    assert "pgmq.metrics_all()" in query
    assert "voicegate.work_queues" in query
    assert re.findall(r"'([a-z_]+)'", query) == []
    assert float(trigger["metadata"]["targetQueryValue"]) > 0
    auth = resource("TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    [connection] = auth["secretTargetRef"]
    assert connection["parameter"] == "connection"
    assert connection["key"] in resource("Secret", connection["name"])["stringData"]


def test_every_variable_the_manifests_and_compose_set_is_one_voicegate_reads() -> None:
    source = "\n".join(path.read_text() for path in SOURCES)
    settings = {env_var(field) for field in Settings.__struct_fields__ if field not in {"auth", "providers"}}
    read = settings | set(re.findall(r'"([A-Z][A-Z0-9_]+)"', source))
    config = resource("ConfigMap", "voicegate")["data"]
    assert {*config, *resource("Secret", "voicegate")["stringData"]} <= read
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    for name, service in services.items():
        if name != "db":
            assert set(service["environment"]) <= read, name
    c2pa = resource("Secret", "voicegate-c2pa")["stringData"]
    for variable in ("VOICEGATE_C2PA_CERT", "VOICEGATE_C2PA_KEY", "VOICEGATE_C2PA_TRUST_ANCHORS"):
        assert Path(config[variable]).name in c2pa


def test_compose_services_run_real_subcommands_on_distinct_ports() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    voicegate = {name: s for name, s in services.items() if "voicegate" in s["image"] and name != "db"}
    commands = {name: subcommand(s["command"]) for name, s in voicegate.items()}
    assert commands == {
        "storage": "storage",
        "migrate": "migrate",
        "api1": "serve",
        "api2": "serve",
        "worker": "worker",
    }
    ports = [s["environment"]["VOICEGATE_PORT"] for name, s in voicegate.items() if name in {"api1", "api2", "storage"}]
    assert len(set(ports)) == 3
    assert services["worker"]["deploy"] == {"mode": "replicated", "replicas": 3}  # podman-compose wants the mode
    # No HTTP in a worker or migrate: the image's HEALTHCHECK would call them unhealthy.
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}
    for name in ("api1", "api2", "worker", "storage"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_manifests_validate_against_kubernetes_schemas() -> None:
    for doc in manifests():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: kubernetes-validate has no schema for it (checked above instead)
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
