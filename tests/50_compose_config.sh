#!/bin/bash
# tests/50_compose_config.sh DOCKER_COMPOSE — validates docker/docker-compose.yml
# with Debian's docker-compose (no engine needed) and checks what the issue
# asks of it: the services exist, scalable ones have no container_name or
# fixed host ports, every long-running service has a healthcheck.
set -euo pipefail
compose=${1:-docker-compose}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
file=docker/docker-compose.yml

out=$("$compose" -f "$file" config 2>&1) || { echo "$out"; echo "FAIL: compose config"; exit 1; }
services=$("$compose" -f "$file" config --services)
for s in postgres broker gateway api-worker token-worker task-worker webhook-worker sandbox; do
    grep -qx "$s" <<<"$services" || { echo "FAIL: service $s missing"; exit 1; }
done

# Per-service checks on the normalised output (two-space indented YAML).
section () {   # prints the block of service $1 from the normalised config
    awk -v s="  $1:" '
        $0 == s { on = 1; print; next }
        on && /^  [^ ]/ { on = 0 }
        on && /^[^ ]/ { on = 0 }
        on { print }' <<<"$out"
}
for s in api-worker token-worker task-worker webhook-worker; do
    block=$(section "$s")
    [[ -n "$block" ]] || { echo "FAIL: no block for $s"; exit 1; }
    if grep -q 'container_name:' <<<"$block"; then echo "FAIL: $s has container_name (cannot scale)"; exit 1; fi
    if grep -q 'published:' <<<"$block"; then echo "FAIL: $s publishes a host port (cannot scale)"; exit 1; fi
done
for s in postgres broker gateway api-worker token-worker task-worker webhook-worker sandbox; do
    grep -q 'healthcheck:' <<<"$(section "$s")" || { echo "FAIL: $s has no healthcheck"; exit 1; }
done
echo "compose file valid: $(tr '\n' ' ' <<<"$services")"
