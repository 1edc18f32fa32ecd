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
mkdir -p "$out"
# As root in the container, so that it may hand the signing key to the image's user.
"${engine[@]}" run --rm -i --user 0 --network none "${run_args[@]}" --entrypoint python3 \
    -v "$(realpath "$out"):/out" "$image" - /out --shown-as "$out" "$@" < deploy/compose/init.py
