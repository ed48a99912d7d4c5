#!/bin/sh
# Builds overbook/redis:7-offline and overbook/postgres:15-offline without any registry:
# one Debian bookworm rootfs (debootstrap from the configured apt mirror) holding both
# redis-server and postgresql-15, imported twice with a different entrypoint each.
# Idempotent: exits at once when both images exist and were built from the current
# entrypoints (a hash of them is a label of each image); FORCE=1 rebuilds.
#
# Usage: docker/build-offline-images.sh   (as root; needs debootstrap, installs it if missing)
# Env:   MIRROR (default: first deb.debian.org-style URI in /etc/apt/sources.list*),
#        REDIS_TAG, POSTGRES_TAG, FORCE=1.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
REDIS_TAG=${REDIS_TAG:-overbook/redis:7-offline}
POSTGRES_TAG=${POSTGRES_TAG:-overbook/postgres:15-offline}
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }

# Images built from older entrypoints (e.g. before they took POSTGRES_PASSWORD) must not
# be reused: their build is identified by a hash of the entrypoints.
recipe=$(cat "$here/redis-entrypoint.sh" "$here/postgres-entrypoint.sh" | sha256sum | cut -c1-16)
built() { docker image inspect -f '{{index .Config.Labels "overbook.recipe"}}' "$1" 2>/dev/null; }
if [ "${FORCE:-0}" != 1 ] && [ "$(built "$REDIS_TAG")" = "$recipe" ] \
    && [ "$(built "$POSTGRES_TAG")" = "$recipe" ]; then
    stamp "images $REDIS_TAG and $POSTGRES_TAG are up to date; FORCE=1 rebuilds"
    exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    stamp "installing debootstrap"
    apt-get install -y debootstrap >/dev/null
fi

if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
        | sed -n -e 's/^URIs: *\([^ ]*\/debian\)$/\1/p' \
                 -e 's/^deb \[*[^]]*\]* *\(http[^ ]*\/debian\) .*/\1/p' -e 's/^deb \(http[^ ]*\/debian\) .*/\1/p' \
        | head -n1)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

work=$(mktemp -d /tmp/overbook-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
root="$work/rootfs"
stamp "debootstrap bookworm from $MIRROR into $root"
debootstrap --variant=minbase --include=redis-server,postgresql-15 \
    bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log"; exit 1; }
stamp "debootstrap done"

# The package's own cluster (created by postinst) is not used: the entrypoint initdbs
# into PGDATA on first start, like the official image. Trim what a server never reads.
rm -rf "$root/var/lib/postgresql/15" "$root/etc/postgresql/15" \
    "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* \
    "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale"
# Data on volumes, as in the official images: a volume lives with its container (kept
# across docker kill + start, removed with `docker rm -v`), and it bypasses the storage
# driver, which here is fuse-overlayfs (initdb takes 5 s on it, well under 1 s on a volume).
mkdir -p "$root/data" "$root/var/lib/postgresql/data"
install -m 755 "$here/redis-entrypoint.sh" "$root/usr/local/bin/redis-entrypoint.sh"
install -m 755 "$here/postgres-entrypoint.sh" "$root/usr/local/bin/postgres-entrypoint.sh"

# A rebuild (FORCE=1) retags; the old images would linger untagged, so note them.
old=$(docker image inspect -f '{{.Id}}' "$REDIS_TAG" "$POSTGRES_TAG" 2>/dev/null || true)

stamp "packing rootfs"
tar -C "$root" --numeric-owner -cf "$work/rootfs.tar" .
stamp "docker import $REDIS_TAG"
docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/redis-entrypoint.sh"]' \
    --change 'CMD ["redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--bind", "0.0.0.0"]' \
    --change 'EXPOSE 6379' \
    --change 'WORKDIR /data' \
    --change 'VOLUME /data' \
    --change 'LABEL overbook.image=redis' \
    --change "LABEL overbook.recipe=$recipe" \
    "$work/rootfs.tar" "$REDIS_TAG" >/dev/null
stamp "docker import $POSTGRES_TAG"
docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENV POSTGRES_HOST_AUTH_METHOD=trust' \
    --change 'EXPOSE 5432' \
    --change 'VOLUME /var/lib/postgresql/data' \
    --change 'LABEL overbook.image=postgres' \
    --change "LABEL overbook.recipe=$recipe" \
    "$work/rootfs.tar" "$POSTGRES_TAG" >/dev/null
for id in $old; do
    docker rmi "$id" >/dev/null 2>&1 || true
done
stamp "done: $REDIS_TAG $POSTGRES_TAG"
