#!/usr/bin/env bash
# `make images`: voicegate's image and the tests' PostgreSQL 15 image, built with podman and no registry.
#   1. the Debian bookworm base (Python 3.11, its venv module, CA certificates) made with mmdebstrap and imported
#      as $VOICEGATE_BASE_IMAGE (kept; REBUILD_BASE=1 makes it again);
#   2. Containerfile FROM that base as $VOICEGATE_IMAGE;
#   3. deploy/postgres (Debian's postgresql-15) as $VOICEGATE_POSTGRES_IMAGE, for compose.test.yaml.
# podman, runc, mmdebstrap and their helpers are installed with apt when missing (root needed then), podman-compose
# with pip. Containers run with runc (crun cannot set rlimits on a cgroup v1 hybrid host) and the host's network.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${VOICEGATE_BASE_IMAGE:-localhost/voicegate-base:bookworm}
image=${VOICEGATE_IMAGE:-localhost/voicegate:latest}
postgres=${VOICEGATE_POSTGRES_IMAGE:-localhost/voicegate-postgres:15}

for lock in runtime weights; do
    [[ -f requirements/$lock.lock ]] || {
        echo "requirements/$lock.lock is missing: the image installs the locked runtime dependencies and weights (hashes checked)" >&2
        exit 1
    }
done

missing=()
for tool in podman:podman runc:runc mmdebstrap:mmdebstrap newuidmap:uidmap slirp4netns:slirp4netns \
    fuse-overlayfs:fuse-overlayfs; do
    command -v "${tool%%:*}" > /dev/null || missing+=("${tool##*:}")
done
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# podman-compose from PyPI: Debian's 1.0.3 starts a service without waiting for the one-shot `migrate` it
# depends on (service_completed_successfully). In a venv of its own, on PATH.
if ! command -v podman-compose > /dev/null; then
    python3 -m venv /opt/podman-compose
    /opt/podman-compose/bin/pip install --quiet podman-compose==1.6.0
    ln -sf /opt/podman-compose/bin/podman-compose /usr/local/bin/podman-compose
fi

podman=(podman --runtime runc)
build=("${podman[@]}" build --format docker --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if [[ -n ${REBUILD_BASE:-} ]] || ! podman image exists "$base"; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs.tar"
    podman import "$work/rootfs.tar" "$base"
fi

# pip inside the build gets this machine's CA bundle as a build secret (a proxy may intercept TLS); the
# image never keeps it.
secret=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && secret=(--secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt)
"${build[@]}" "${secret[@]}" --build-arg BASE="$base" --tag "$image" .
"${build[@]}" --build-arg BASE="$base" --tag "$postgres" deploy/postgres

size=$(podman image inspect --format '{{.Size}}' "$image")
echo "$image: $((size / 1000000)) MB"
