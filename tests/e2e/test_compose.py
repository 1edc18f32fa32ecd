"""compose.yaml for real, with podman: Postgres 15, `migrate`, the Storage stand-in, two API containers and three
workers from the images deploy/images.sh builds (this test builds them, as `make images` does, under a tag of its
own run). Users and their tokens come from `voicegate token` run in the stack as docs/operations.md says. The PRD
flow (upload → clone → speak → result) runs through both APIs while one worker container is killed in the middle
of a job; every job must succeed, each sample get exactly one provider voice, and nothing be left open. Then
everything is torn down, and nothing is left behind.

Part of `make test` wherever podman runs (it installs podman; tests/conftest.py runs this file last, so that the
image's build is in podman's cache by then); `VOICEGATE_COMPOSE_E2E=0` skips it, and `make test-compose` runs it
alone.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from backend.queues import DEAD_LETTER, WORK_QUEUES
from devkit.audio_corpus import speech_wav
from devkit.up import tls_context
from standins.postgres import free_port

REPO = Path(__file__).resolve().parents[2]
#: The image under test, built for this run and removed after it.
IMAGE = f"localhost/voicegate:test-compose-{os.getpid()}"
POSTGRES_IMAGE = "localhost/voicegate-postgres:18"
#: The longest the images' build may take (the voicegate image is usually in podman's cache by then; Postgres's
#: is Debian's packages on the base).
BUILD_SECONDS = 900
#: How podman runs containers on these machines (shared/reference/containers.md): runc, with explicit rlimits.
PODMAN_GLOBAL = "--runtime runc"
PODMAN_RUN = "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
FLOWS = 6
#: A provider's setting that compose.yaml names nowhere (harmless: the stack speaks with `local`).
PROVIDER_SETTING = "SELFHOSTED_TIMEOUT_SECONDS=90"
TEXT = (
    "Hello from the compose stack, spoken in a cloned voice. "
    "This second sentence gives the worker something to chew on for a while. "
    "And a third one, so that a job takes a few parts."
)

pytestmark = pytest.mark.timeout(1500)


def _prerequisites() -> str:
    """The podman-compose executable once the images are built; a skip when asked to (VOICEGATE_COMPOSE_E2E=0),
    a failure naming what is missing otherwise."""
    if os.environ.get("VOICEGATE_COMPOSE_E2E") == "0":
        pytest.skip("VOICEGATE_COMPOSE_E2E=0: the compose stack is not run")
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: `make test` installs it (.ci/ensure-packages), as root")
    # At a lower CPU priority, as tests/e2e/test_image.py builds, so that the tests beside it keep their pace.
    run(
        ["nice", "-n", "10", "bash", "deploy/images.sh", "voicegate", "postgres"],
        BUILD_SECONDS,
        cwd=REPO,
        env={**os.environ, "VOICEGATE_IMAGE": IMAGE, "VOICEGATE_POSTGRES_IMAGE": POSTGRES_IMAGE},
    )
    compose = shutil.which("podman-compose")
    assert compose is not None, "deploy/images.sh postgres installs podman-compose, yet it is not on PATH"
    return compose


def run(args: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command to completion within `timeout`; fail with its output when it fails."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done


def wait_until(predicate: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.5)


@dataclass
class Compose:
    """A compose project of this test: its command line, settings and what it started."""

    command: list[str]
    project: str
    env: dict[str, str]

    @property
    def dsn(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def apis(self) -> list[str]:
        return [f"http://127.0.0.1:{self.env[f'VOICEGATE_API{n}_PORT']}" for n in (1, 2)]

    def __call__(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run([*self.command, *args], timeout, cwd=REPO)

    def containers(self, service: str | None = None, *, every: bool = True) -> list[str]:
        """Names of the project's containers (of `service`), running or not (only running unless `every`)."""
        labels = [f"--filter=label=io.podman.compose.project={self.project}"]
        if service is not None:
            labels.append(f"--filter=label=com.docker.compose.service={service}")
        listed = run(["podman", "ps", *(["-a"] if every else []), *labels, "--format={{.Names}}"], 60)
        return sorted(listed.stdout.split())

    def inspect(self, container: str, template: str) -> str:
        return run(["podman", "inspect", f"--format={template}", container], 60).stdout.strip()

    def logs(self, container: str) -> str:
        done = subprocess.run(
            ["podman", "logs", "--tail=40", container], capture_output=True, text=True, timeout=60, check=False
        )
        return done.stdout + done.stderr

    def token(self, user: str) -> str:
        """`user`'s token, made as docs/operations.md says: `podman-compose ... run --rm migrate token --user`,
        whose whole output is the token (the docs put it in a shell variable)."""
        made = self("run", "--rm", "migrate", "token", "--user", user, timeout=300).stdout.strip()
        assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", made), made[-2000:]
        return made

    def leftovers(self) -> list[str]:
        volumes = run(["podman", "volume", "ls", "--format={{.Name}}"], 60).stdout.split()
        return self.containers() + [v for v in volumes if v.startswith(f"{self.project}_")]


def ready(url: str) -> bool:
    try:
        answer = httpx.get(f"{url}/readyz", timeout=3, verify=tls_context())
    except httpx.TransportError:
        return False
    return answer.status_code == 200 and answer.json()["status"] == "ready"


def postgres_answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    podman_compose = _prerequisites()
    workdir = tmp_path_factory.mktemp("compose")
    db_port, storage_port, api1, api2 = (free_port() for _ in range(4))
    init_env = {
        **os.environ,
        "VOICEGATE_COMPOSE_DIR": str(workdir),
        "VOICEGATE_IMAGE": IMAGE,
        "CONTAINER": f"podman {PODMAN_GLOBAL}",
        "CONTAINER_RUN_ARGS": PODMAN_RUN,
    }
    ports = ["--db-port", str(db_port), "--storage-port", str(storage_port), "--api-ports", str(api1), str(api2)]
    print(run(["bash", "deploy/compose/init.sh", *ports], 300, cwd=REPO, env=init_env).stdout)
    env_file = workdir / "env"
    with env_file.open("a") as extra:
        extra.write(f"VOICEGATE_C2PA_DIR={workdir / 'c2pa'}\nVOICEGATE_IMAGE={IMAGE}\n")
        # Not .compose/env: the file names itself so that its containers read it whole; a provider setting
        # compose.yaml does not name rides along to show that they do.
        extra.write(f"VOICEGATE_ENV_FILE={env_file}\n{PROVIDER_SETTING}\n")
        # INFO: a worker's name (a lease's holder) is in its log alone.
        extra.write(f"VOICEGATE_POSTGRES_IMAGE={POSTGRES_IMAGE}\nVOICEGATE_LOG_LEVEL=INFO\n")
        # Both users upload the one synthetic speaker of devkit's corpus, which the ownership registry would hold
        # as one voice with two owners (its own tests: tests/integration/test_voice_ownership.py).
        extra.write("VOICEGATE_VOICE_OWNERSHIP=off\n")
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    project = f"vgtest{os.getpid()}"
    command = [
        podman_compose,
        f"--podman-args={PODMAN_GLOBAL}",
        f"--podman-run-args={PODMAN_RUN}",
        f"--project-name={project}",
        f"--env-file={env_file}",
        "--file=compose.yaml",
        "--file=compose.test.yaml",
    ]
    compose = Compose(command, project, env)
    try:
        # One step at a time, as docs/operations.md says for podman before 4.6 (Debian 12 has 4.3): podman-compose
        # cannot wait on a health check there, and the `--requires` it gives a container would start `migrate` again.
        started = time.monotonic()
        compose("up", "--detach", "--no-build", "--no-deps", "db")
        wait_until(lambda: postgres_answers(compose.dsn), 180, "Postgres in its container")
        compose("up", "--detach", "--no-build", "--no-deps", "migrate")
        [migrate] = compose.containers("migrate")
        assert run(["podman", "wait", migrate], 300).stdout.strip() == "0", compose.logs(migrate)
        compose("up", "--detach", "--no-build", "--no-deps", "storage", "api1", "api2", "worker")
        for api in compose.apis:
            wait_until(functools.partial(ready, api), 180, f"{api}/readyz to say ready")
        print(f"stack up in {time.monotonic() - started:.0f} s: {', '.join(compose.containers())}")
        yield compose
    finally:
        down = subprocess.run(
            [*command, "down", "--volumes", "--timeout=30"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
            check=False,
        )
        left = compose.leftovers()
        for name in left:  # leave the machine clean even when the test fails
            subprocess.run(["podman", "rm", "--force", name], capture_output=True, timeout=120, check=False)
            subprocess.run(["podman", "volume", "rm", "--force", name], capture_output=True, timeout=120, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        subprocess.run(["podman", "rmi", IMAGE], capture_output=True, timeout=120, check=False)
        assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
        assert left == [], f"`down` left {left}"


def keda_query() -> str:
    """The query deploy/k8s/keda.yaml has KEDA run to scale the workers."""
    for doc in yaml.safe_load_all((REPO / "deploy" / "k8s" / "keda.yaml").read_text()):
        if doc["kind"] == "ScaledObject":
            return str(doc["spec"]["triggers"][0]["metadata"]["query"])
    raise AssertionError("no ScaledObject in keda.yaml")


def worker_name(stack: Compose, container: str) -> str:
    """The name the worker in `container` holds leases by, as it logged it when it started."""
    logged = run(["podman", "logs", container], 60)
    names = re.findall(r"worker (\S+) starting", logged.stdout + logged.stderr)
    assert names, f"{container} logged no name"
    return names[-1]


def rows(dsn: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def start_flow(api: str, token: str, seed: int) -> str:
    """Upload a consented sample and ask for TEXT in the voice cloned from it; the job's id."""
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        upload = client.post(
            "/api/v1/voice-samples",
            data={"consent": "true", "language": "en"},
            files={"file": ("me.wav", speech_wav(seed=seed), "audio/wav")},
        )
        assert upload.status_code == 202, upload.text
        clone = client.post("/api/v1/clone", json={"sampleId": upload.json()["sampleId"], "text": TEXT})
        assert clone.status_code == 202, clone.text
        return str(clone.json()["jobId"])


def job_statuses(dsn: str) -> dict[str, str]:
    return {str(r["id"]): r["status"] for r in rows(dsn, "select id, status from synthesis_jobs")}


def test_a_provider_setting_in_the_env_file_reaches_every_voicegate_container(stack: Compose) -> None:
    for service in ("migrate", "storage", "api1", "api2", "worker"):
        containers = stack.containers(service)
        assert containers, service
        for container in containers:
            env = stack.inspect(container, "{{range .Config.Env}}{{println .}}{{end}}").splitlines()
            assert PROVIDER_SETTING in env, (container, env)


def test_the_prd_flow_through_both_apis_outlives_a_worker_killed_mid_job(stack: Compose) -> None:
    workers = stack.containers("worker", every=False)
    assert len(workers) == 3, workers
    # Two users and their tokens, as docs/operations.md makes one: `voicegate token` run in the stack.
    tokens = [stack.token(f"compose-{n}@example.test") for n in range(2)]
    jobs = {}
    for n in range(FLOWS):
        api = stack.apis[n % 2]
        jobs[start_flow(api, tokens[n % 2], seed=n)] = api
    assert set(job_statuses(stack.dsn)) == set(jobs)

    # KEDA's query, as deploy/k8s/keda.yaml has it, sees the work waiting.
    [[depth]] = [list(r.values()) for r in rows(stack.dsn, keda_query())]
    print(f"KEDA query while the jobs wait: {depth}")
    assert depth > 0

    # Kill (SIGKILL) the worker container holding a job's lease while it speaks it. Every container has the host's
    # name (a host network): a lease's holder is found by the name the worker logged as it started. A job can
    # finish between the look and the kill; then another worker is killed the same way (one of three is left).
    named = {worker_name(stack, w): w for w in workers}
    assert len(named) == 3, named
    held: list[dict[str, Any]] = []

    def a_worker_speaks() -> bool:
        held[:] = [
            r
            for r in rows(stack.dsn, "select id, lease_owner from synthesis_jobs where status = 'processing'")
            if str(r["lease_owner"]).split("/")[0] in named  # a job's run: "<worker>/<run>"
        ]
        return bool(held)

    orphaned: list[dict[str, Any]] = []
    while not orphaned and len(named) > 1:
        wait_until(a_worker_speaks, 300, "a live worker to take a synthesis job")
        owner = str(held[0]["lease_owner"]).split("/")[0]
        victim = named.pop(owner)
        run(["podman", "kill", "--signal=KILL", victim], 60)
        # Still leased to the dead worker: whoever finishes these takes them over once the lease runs out.
        orphaned = rows(
            stack.dsn,
            "select id from synthesis_jobs where status = 'processing' and split_part(lease_owner, '/', 1) = %s",
            (owner,),
        )
        print(f"killed {victim} ({owner}) while it held jobs {sorted(str(r['id']) for r in orphaned)}")
    assert orphaned, "every worker killed had finished its jobs first"

    wait_until(
        lambda: all(s in {"succeeded", "failed"} for s in job_statuses(stack.dsn).values()),
        900,
        "every job to finish",
    )
    finished = rows(stack.dsn, "select id, status, error_code, error_message from synthesis_jobs")
    assert [r["status"] for r in finished] == ["succeeded"] * FLOWS, finished

    # The result of every job, through the API that took it, downloads from Storage as a WAV.
    for job_id, api in jobs.items():
        headers = {"Authorization": f"Bearer {tokens[list(jobs).index(job_id) % 2]}"}
        result = httpx.get(f"{api}/api/v1/clone/{job_id}/result", headers=headers, timeout=30)
        assert result.status_code == 200, result.text
        assert result.json()["provenance"] == "c2pa"
        audio = httpx.get(result.json()["audioUrl"], timeout=30)
        assert audio.status_code == 200
        assert (audio.content[:4], audio.content[8:12]) == (b"RIFF", b"WAVE")
        assert len(audio.content) > 24_000

    # Exactly one provider voice per sample: one clone attempt each, one local voice each, none spare.
    attempts = rows(stack.dsn, "select sample_id, status, provider_voice_id, enrolment_key from voice_clone_attempts")
    assert len({a["sample_id"] for a in attempts}) == len(attempts) == FLOWS
    assert all(a["status"] == "ready" and a["provider_voice_id"] for a in attempts), attempts
    local = rows(stack.dsn, "select voice_id, enrolment_key from voicegate.local_voices")
    assert sorted(v["voice_id"] for v in local) == sorted(a["provider_voice_id"] for a in attempts)
    assert sorted(v["enrolment_key"] for v in local) == sorted(a["enrolment_key"] for a in attempts)

    # Nothing left open: no lease held, no message waiting or dead-lettered once the workers archived them.
    assert rows(stack.dsn, "select id from synthesis_jobs where lease_owner is not null") == []
    assert rows(stack.dsn, "select id from voice_clone_attempts where lease_owner is not null") == []

    def queues_empty() -> bool:
        lengths = rows(stack.dsn, "select queue_name, queue_length from pgmq.metrics_all()")
        return all(r["queue_length"] == 0 for r in lengths if r["queue_name"] in {*WORK_QUEUES, DEAD_LETTER})

    wait_until(queues_empty, 120, "every queue to be empty")
    samples = rows(stack.dsn, "select status from voice_samples")
    assert [s["status"] for s in samples] == ["ready"] * FLOWS
    print(f"workers running at the end: {stack.containers('worker', every=False)}")
