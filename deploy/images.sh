#!/usr/bin/env bash
# `make images`: voicegate's image and the tests' PostgreSQL 15 image, built with podman and no registry.
#   1. the Debian bookworm base (Python 3.11, its venv module, CA certificates) made with mmdebstrap and imported
#      as $VOICEGATE_BASE_IMAGE: merged /usr set up by mmdebstrap's hook rather than the usrmerge package (which
#      would bring Perl, 46 MB), and dpkg told to leave out manuals, documentation but the copyright files, and
#      translations, here and in every image built on it. Kept (labelled with its recipe's hash), and made again when
#      the recipe changed or REBUILD_BASE=1 (for Debian's updates);
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

recipe=(--variant=minbase --include=python3,python3-venv,ca-certificates
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
    bookworm)
recipe_hash=$(printf '%s\n' "${recipe[@]}" | sha256sum | cut -c1-16)
made_by=$(podman image inspect --format '{{index .Labels "io.voicegate.base-recipe"}}' "$base" 2> /dev/null || true)
if [[ -n ${REBUILD_BASE:-} || $made_by != "$recipe_hash" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mmdebstrap "${recipe[@]}" "$work/rootfs.tar"
    podman import --change "LABEL io.voicegate.base-recipe=$recipe_hash" "$work/rootfs.tar" "$base"
fi

# pip inside the build gets this machine's CA bundle as a build secret (a proxy may intercept TLS); the
# image never keeps it.
secret=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && secret=(--secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt)
"${build[@]}" "${secret[@]}" --build-arg BASE="$base" --tag "$image" .
"${build[@]}" --build-arg BASE="$base" --tag "$postgres" deploy/postgres

size=$(podman image inspect --format '{{.Size}}' "$image")
echo "$image: $((size / 1000000)) MB"
