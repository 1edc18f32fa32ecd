#!/usr/bin/env bash
# Make .compose/env and .compose/c2pa/ for compose.yaml (see deploy/compose/init.py), with voicegate's own image:
#   deploy/compose/init.sh [--db-port N] [--storage-port N] [--api-ports N N]
# then: podman-compose --env-file .compose/env up -d   (or: docker compose --env-file .compose/env up -d)
# VOICEGATE_IMAGE names the image (default localhost/voicegate:latest), VOICEGATE_COMPOSE_DIR the directory
# (default .compose), CONTAINER the engine with its global flags (default podman, else docker), and
# CONTAINER_RUN_ARGS more flags for its `run`.
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${VOICEGATE_IMAGE:-localhost/voicegate:latest}
out=${VOICEGATE_COMPOSE_DIR:-.compose}
read -ra engine <<< "${CONTAINER:-$(command -v podman || command -v docker)}"
read -ra run_args <<< "${CONTAINER_RUN_ARGS:-}"
# A host that does not let a container raise its open-file limit (rootless podman without delegated cgroups, a
# container in a container, a CI runner) refuses every container podman starts with its defaults, this one and
# the stack's alike: say the fix at once, before `up` fails with it seven times.
if ! probe=$("${engine[@]}" run --rm --network none "${run_args[@]}" --entrypoint true "$image" 2>&1); then
    if grep -qi 'rlimit' <<< "$probe"; then
        cat >&2 << EOF
init.sh: this host does not let a container raise its open-file limit:
  ${probe%%$'\n'*}
Give every podman command limits the host allows (its own open-file limit, and 4,096 processes: a voicegate
container runs a few), once, in ~/.config/containers/containers.conf (as root: /etc/containers/containers.conf), then
run init.sh again:
  [containers]
  default_ulimits = ["nofile=$(ulimit -Sn):$(ulimit -Hn)", "nproc=4096:4096"]
  [engine]
  runtime = "runc"
(docs/operations.md, "Containers, compose and Kubernetes"). For init.sh alone: CONTAINER_RUN_ARGS="--ulimit ...".
EOF
        exit 1
    fi
    printf 'init.sh: %s cannot run %s:\n%s\n' "${engine[*]}" "$image" "$probe" >&2
    exit 1
fi
mkdir -p "$out"
# As root in the container, so that it may hand the signing key to the image's user.
"${engine[@]}" run --rm -i --user 0 --network none "${run_args[@]}" --entrypoint python3 \
    -v "$(realpath "$out"):/out" "$image" - /out --shown-as "$out" "$@" < deploy/compose/init.py
