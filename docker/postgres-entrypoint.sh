#!/bin/sh
# Behaves like the official postgres image: initdb as the postgres user when PGDATA is
# empty, listen on all addresses, and for every host POSTGRES_HOST_AUTH_METHOD (with
# POSTGRES_PASSWORD set, the postgres user gets it and the default is scram-sha-256, as
# overbook runs it; without, trust). A restarted container (docker kill + start) finds
# PGDATA filled and just starts again, which is how committed rows survive a kill.
set -e
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
        chown postgres "$pwfile"
        runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres \
            --auth=scram-sha-256 --pwfile="$pwfile" --no-sync -E UTF8 >/dev/null
        rm -f "$pwfile"
        method=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    else
        runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust \
            --no-sync -E UTF8 >/dev/null
        method=${POSTGRES_HOST_AUTH_METHOD:-trust}
    fi
    echo "host all all all $method" >> "$PGDATA/pg_hba.conf"
fi
if [ "${1:-}" = postgres ]; then
    shift
fi
if [ -z "${1:-}" ] || [ "${1#-}" != "$1" ]; then
    exec runuser -u postgres -- "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
