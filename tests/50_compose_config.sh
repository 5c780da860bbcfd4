#!/bin/bash
# tests/50_compose_config.sh DOCKER_COMPOSE — validates docker/docker-compose.yml
# with Debian's docker-compose (no engine needed) and checks what the issue
# asks of it: the services exist, scalable ones have no container_name or
# fixed host ports, every long-running service has a healthcheck, secrets
# come from files and never from the environment, PostgreSQL keeps its data
# in a volume, the key job runs before the gateway, and the image's build
# stage installs scripts/deps.sh's own list. tests/50_compose_up.sh runs it.
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
# Secrets: files under /run/secrets, never a value in the environment.
for name in postgres_password db_password sandbox_api_key session_key admin_key secret_key; do
    grep -Eq "^  $name:\$" <<<"$(awk '/^secrets:/ { on = 1; next } /^[^ ]/ { on = 0 } on' <<<"$out")" ||
        { echo "FAIL: secret $name is not declared"; exit 1; }
done
secret_env='password=|POSTGRES_PASSWORD:|_API_KEY:|_TOKEN:|_ADMIN_KEY:|_SECRET_KEY:|_SESSION_KEY:'
if grep -Eq "$secret_env" <<<"$out"; then
    echo "FAIL: a secret is passed in the environment:"
    grep -E "$secret_env" <<<"$out"
    exit 1
fi
# A binary reads its secret from the file <VAR>_FILE names, itself: the
# entrypoint copies none into an environment variable any more.
if grep -q 'SB_SECRET_ENV' <<<"$out"; then
    echo "FAIL: SB_SECRET_ENV copies a secret into the environment; use <VAR>_FILE"
    exit 1
fi
grep -Eq -- '- pgdata:/var/lib/postgresql/data(:rw)?$' <<<"$(section postgres)" ||
    { echo "FAIL: postgres keeps its data in no volume"; exit 1; }
grep -A1 'token-key:' <<<"$(section gateway)" | grep -q 'condition: service_completed_successfully' ||
    { echo "FAIL: the gateway does not wait for the token-key job"; exit 1; }
grep -q 'SB_SESSION_KEY_FILE: /run/secrets/session_key' <<<"$(section gateway)" &&
grep -Eq -- '- (source: )?session_key$' <<<"$(section gateway)" ||
    { echo "FAIL: the gateway does not read its session key from the session_key secret"; exit 1; }
grep -q 'SB_ADMIN_KEY_FILE: /run/secrets/admin_key' <<<"$(section gateway)" &&
grep -Eq -- '- (source: )?admin_key$' <<<"$(section gateway)" ||
    { echo "FAIL: the gateway does not read the operator key from the admin_key secret"; exit 1; }
block=$(section token-worker)
grep -q 'SB_SECRET_KEY_FILE: /run/secrets/secret_key' <<<"$block" &&
grep -Eq -- '- (source: )?secret_key$' <<<"$block" ||
    { echo "FAIL: the token worker does not read its secret from the secret_key secret"; exit 1; }
# The webhook worker opens the endpoints' secrets the token worker sealed:
# the same master secret, and the database.
wblock=$(section webhook-worker)
grep -q 'SB_SECRET_KEY_FILE: /run/secrets/secret_key' <<<"$wblock" &&
grep -Eq -- '- (source: )?secret_key$' <<<"$wblock" &&
grep -q 'SB_DATABASE_URL:' <<<"$wblock" ||
    { echo "FAIL: the webhook worker does not get the database and the secret_key secret"; exit 1; }
issuer=$(sed -n 's/^ *SB_ISSUER: *//p' <<<"$block")
public=$(sed -n 's/^ *SB_PUBLIC_URL: *//p' <<<"$(section gateway)")
[[ -n "$issuer" && "$issuer" == "$public" ]] ||
    { echo "FAIL: the token worker's SB_ISSUER ($issuer) is not the gateway's SB_PUBLIC_URL ($public)"; exit 1; }
grep -q 'sb-admin' docker/Dockerfile ||
    { echo "FAIL: the image has no sb-admin"; exit 1; }
grep -q 'deps.sh --build' docker/Dockerfile ||
    { echo "FAIL: docker/Dockerfile's build stage does not install scripts/deps.sh --build"; exit 1; }
echo "compose file valid: $(tr '\n' ' ' <<<"$services")"
