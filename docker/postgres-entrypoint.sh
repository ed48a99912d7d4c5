#!/bin/sh
# Behaves like the official postgres image with POSTGRES_HOST_AUTH_METHOD=trust: initdb as
# the postgres user when PGDATA is empty, trust auth from any host, listen on all addresses.
# A restarted container (docker kill + start) finds PGDATA filled and just starts again,
# which is how committed rows survive a kill.
set -e
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust \
        --no-sync -E UTF8 >/dev/null
    echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-trust}" >> "$PGDATA/pg_hba.conf"
fi
if [ "${1:-}" = postgres ]; then
    shift
fi
if [ -z "${1:-}" ] || [ "${1#-}" != "$1" ]; then
    exec runuser -u postgres -- "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
