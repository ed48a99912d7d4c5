#!/bin/sh
# Behaves like the official redis image for what overbook uses: no persistence unless
# asked (extra args are appended, e.g. --appendonly yes), reachable from the host network.
set -e
if [ -z "${1:-}" ] || [ "${1#-}" != "$1" ]; then
    set -- redis-server --save '' --appendonly no --protected-mode no --bind 0.0.0.0 "$@"
fi
exec "$@"
