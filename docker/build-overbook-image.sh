#!/bin/sh
# Builds the image of overbook itself (Dockerfile, target `prebuilt`) without any
# registry: the runtime stage is based on the offline server image (which already holds
# redis-server and Postgres 15), and overbook is the binary built on this machine
# (Debian bookworm, like the image). Builds the offline server images first if missing.
#
# Usage: docker/build-overbook-image.sh   (as root, from anywhere in the checkout)
# Env:   OVERBOOK_BIN  an overbook binary to put in (default: cargo build --release),
#        TAG           the image tag (default overbook/overbook:latest; a registry would
#                      carry ghcr.io/<owner>/overbook:<version>),
#        BASE          the runtime base (default overbook/postgres:15-offline).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
TAG=${TAG:-overbook/overbook:latest}
BASE=${BASE:-overbook/postgres:15-offline}
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    stamp "no $BASE: building the offline server images"
    "$here/build-offline-images.sh"
fi
if [ -z "${OVERBOOK_BIN:-}" ]; then
    stamp "cargo build --release --bin overbook"
    (cd "$repo" && cargo build --release --bin overbook)
    OVERBOOK_BIN="$repo/target/release/overbook"
fi
[ -x "$OVERBOOK_BIN" ] || { echo "not an executable: $OVERBOOK_BIN" >&2; exit 2; }

# A context of two files: the Dockerfile and the binary (the checkout's target/ holds
# gigabytes the daemon would otherwise be sent).
ctx=$(mktemp -d /tmp/overbook-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT INT TERM
cp "$repo/Dockerfile" "$ctx/Dockerfile"
cp "$OVERBOOK_BIN" "$ctx/overbook"
stamp "docker build --target prebuilt -t $TAG (runtime base $BASE)"
# The legacy builder: no BuildKit here, and it resolves the base image locally.
DOCKER_BUILDKIT=0 docker build -q --target prebuilt --build-arg "RUNTIME_BASE=$BASE" \
    --label "overbook.version=$("$OVERBOOK_BIN" --version | cut -d' ' -f2)" \
    -t "$TAG" "$ctx" >/dev/null
stamp "done: $TAG ($("$OVERBOOK_BIN" --version))"
