#!/bin/sh
# docker/healthcheck.sh — the image's readiness probe, `sb-healthcheck
# CHECK…`; exits 0 when every CHECK holds (docker-compose.yml's
# healthchecks). It reads /proc/net/tcp{,6}: a container has its own
# network namespace, so what it lists is this service's own sockets.
#
#   listen PORT   something listens on TCP PORT (the broker, the sandbox)
#   peer PORT     the process runs and holds an established connection to a
#                 remote PORT: a worker is ready once it reaches the broker
#                 (5556) and, for the token and task roles, the database
#                 (5432), which it reaches only after applying the migrations
#   http URL      GET URL answers 2xx (the gateway's /healthz)
set -eu

# s_tcp STATE PORT FIELD — true when a socket in STATE (hex, 0A listen,
# 01 established) has PORT in FIELD (2 local, 3 remote address).
s_tcp () {
    hex=$(printf ':%04X' "$2")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v st="$1" -v port="$hex" -v f="$3" '
            $4 == st && substr($f, length($f) - 4) == port { found = 1 }
            END { exit !found }'
}

[ $# -gt 0 ] || { echo "usage: sb-healthcheck listen PORT | peer PORT | http URL …" >&2; exit 2; }
while [ $# -ge 2 ]; do
    case $1 in
        listen) s_tcp 0A "$2" 2 || { echo "nothing listens on port $2"; exit 1; } ;;
        peer)
            child=$(cut -d' ' -f1 /proc/1/task/1/children)
            if [ -z "$child" ] || ! kill -0 "$child"; then echo "the process does not run"; exit 1; fi
            s_tcp 01 "$2" 3 || { echo "no connection to port $2 yet"; exit 1; } ;;
        http) curl -fsS -o /dev/null -m 2 "$2" || exit 1 ;;
        *) echo "sb-healthcheck: unknown check '$1'" >&2; exit 2 ;;
    esac
    shift 2
done
[ $# -eq 0 ] || { echo "sb-healthcheck: '$1' needs an argument" >&2; exit 2; }
