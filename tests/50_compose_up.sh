#!/bin/bash
# tests/50_compose_up.sh [WORK_DIR] — docker-compose for real: builds the
# image from docker/Dockerfile, starts docker/docker-compose.yml unchanged
# (plus tests/docker/compose.test.yml, which only swaps in a PostgreSQL
# image built here, as no registry is reachable) and checks what an
# operator relies on, in the order docker/README.md gives it:
#
#   1. every service healthy (ready: workers reach the broker, and the
#      database ones the database after migrating), the key job done;
#   2. the README's first tool call through the gateway's published port;
#   2b. sb-admin in the gateway container adds the demo user (operator key
#      from the admin_key secret), who signs in on /authorize (curl);
#   3. the services' role is no superuser and row-level security holds for
#      it, queried from a container over the compose network;
#   4. --scale api-worker=3 and the broker counts three api workers;
#   5. a worker process killed inside its container: calls go on, and the
#      restart policy brings the container back, registered again;
#   6. SIGHUP as the README sends it: gateway and api workers reload;
#   7. down -v: no container, network or volume of the project is left.
#
# It needs root: it starts dockerd itself when no engine answers (and stops
# it at the end), and makes the base images when the engine lacks them
# (docker/base-image.sh; kept in /var/lib/docker for the next run).
# SB_COMPOSE_KEEP=1 leaves the farm up for a look (no down at the end).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/farm.sh
source scripts/farm.sh      # sb_farm_signin
work=${1:-$root/build/test-compose}
mkdir -p "$work"
work=$(cd "$work" && pwd)

SB_COMPOSE_READY_S=180      # every service healthy after `up`
SB_COMPOSE_EVENT_S=60       # a log line, a restart, a count after an action
SB_COMPOSE_CALLS=5          # tool calls right after a worker is killed
image=switchboard:test
project=sbtest$(cksum <<<"$work" | cut -d' ' -f1)
# docker-compose (v1, Python) takes seconds to start: it runs the operator's
# commands; polls and probes use the docker CLI on container IDs.
compose=(docker-compose --ansi never -p "$project"
         -f docker/docker-compose.yml -f tests/docker/compose.test.yml)
started_dockerd=
t0=$SECONDS

s_phase () { sb_say "[$((SECONDS - t0)) s] $*"; }
s_fail () {
    sb_say "FAIL: $*"
    "${compose[@]}" ps >&2 2>/dev/null || true
    "${compose[@]}" logs --no-color --tail=30 >&2 2>/dev/null || true
    exit 1
}

# s_cleanup — the farm down (volumes included) and the engine stopped when
# this test started it; runs on every exit.
s_cleanup () {
    local rc=$?
    if [[ "${SB_COMPOSE_KEEP:-0}" != 1 ]] && docker info >/dev/null 2>&1; then
        "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    if [[ -n "$started_dockerd" ]]; then
        sb_stop_pid "$started_dockerd" 60 >/dev/null || true
        sb_say "stopped the dockerd this test started (pid $started_dockerd)"
    fi
    exit "$rc"
}
trap s_cleanup EXIT

# --- the engine -------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
    [[ $(id -u) == 0 ]] || sb_die "no Docker engine answers and only root may start one"
    command -v dockerd >/dev/null || sb_die "dockerd is missing (scripts/deps.sh installs docker.io)"
    dockerd >"$work/dockerd.log" 2>&1 &
    started_dockerd=$!
    deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
        kill -0 "$started_dockerd" 2>/dev/null || { tail -n 20 "$work/dockerd.log" >&2; sb_die "dockerd exited"; }
        ((SECONDS < deadline)) || sb_die "dockerd did not answer within 60 s"
        sleep 0.2
    done
    s_phase "started dockerd (pid $started_dockerd; log $work/dockerd.log)"
fi
if [[ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$project")" ]]; then
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true    # what a killed run left
fi

# --- images -------------------------------------------------------------------
docker/base-image.sh
s_phase "base image ready"
# Both builds at once (each mostly waits on apt when nothing is cached);
# with the layer cache warm each takes seconds.
docker build -t switchboard-test/postgres:15 tests/docker/postgres >"$work/build-postgres.log" 2>&1 &
pg_build=$!
build_rc=0
docker build -f docker/Dockerfile -t "$image" . >"$work/build.log" 2>&1 || build_rc=$?
wait "$pg_build" ||
    { tail -n 40 "$work/build-postgres.log" >&2; sb_die "the PostgreSQL stand-in did not build (log: $work/build-postgres.log)"; }
((build_rc == 0)) ||
    { tail -n 40 "$work/build.log" >&2; sb_die "docker build failed (log: $work/build.log)"; }
s_phase "image $image built ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')), and the PostgreSQL stand-in"

# Every binary finds its libraries, and the runtime stage has no compiler.
libs=$(docker run --rm --entrypoint ldd "$image" /usr/local/bin/sb-broker /usr/local/bin/sb-gateway \
           /usr/local/bin/sb-worker /usr/local/bin/sb-sandbox /usr/local/bin/sb-token \
           /usr/local/bin/sb-admin) ||
    sb_die "ldd failed on the image's binaries: $libs"
if grep -q 'not found' <<<"$libs"; then
    grep 'not found' <<<"$libs" >&2
    sb_die "a binary in the image misses a shared library (add its package to docker/Dockerfile's runtime stage)"
fi
if docker run --rm --entrypoint sh "$image" -c 'command -v cc || command -v gcc || command -v c++'; then
    sb_die "the runtime image holds a compiler"
fi

# --- up -----------------------------------------------------------------------
docker/secrets.sh "$work/secrets" >/dev/null
port=$(sb_free_port) || sb_die "no free port"
export SB_IMAGE=$image SB_SECRETS_DIR=$work/secrets SB_GATEWAY_BIND=127.0.0.1
export SB_GATEWAY_PORT=$port SB_PUBLIC_URL=http://127.0.0.1:$port
url=$SB_PUBLIC_URL/mcp
"${compose[@]}" up -d >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; s_fail "docker-compose up"; }
s_phase "docker-compose up -d returned (port $port)"

# s_containers SERVICE — the IDs of the project's containers of SERVICE.
s_containers () {
    docker ps -aq --filter "label=com.docker.compose.project=$project" \
                  --filter "label=com.docker.compose.service=$1"
}

# s_all_ready — true when every container is healthy, the one-shot key job
# has exited 0, and nothing else has stopped.
s_all_ready () {
    local id state
    for id in $(docker ps -aq --filter "label=com.docker.compose.project=$project"); do
        state=$(docker inspect -f '{{.Config.Labels}} {{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
        case $state in
            *com.docker.compose.service:token-key*" exited 0 ") ;;
            *" running 0 healthy") ;;
            *) return 1 ;;
        esac
    done
}

s_wait () {   # s_wait TIMEOUT_S WHAT CMD… — polls CMD until it succeeds
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        ((SECONDS < deadline)) || s_fail "$what"
        sleep 0.5
    done
}
s_wait "$SB_COMPOSE_READY_S" "not every service became healthy within $SB_COMPOSE_READY_S s" s_all_ready
services=$(docker ps -a --filter "label=com.docker.compose.project=$project" \
               --format '{{.Label "com.docker.compose.service"}}' | sort -u | tr '\n' ' ')
[[ "$services" == "api-worker broker gateway postgres sandbox task-worker token-key token-worker webhook-worker " ]] ||
    s_fail "unexpected services: $services"
s_phase "every service healthy: $services"

# --- the README's first tool call -------------------------------------------
gw=$(s_containers gateway)
broker=$(s_containers broker)
pg=$(s_containers postgres)
token=$(docker exec "$gw" sb-token --key-file /opt/switchboard/keys/token.key \
            --tenant demo --subject demo-user --scope "mcp:tools mcp:write" --audience "$url" --ttl 3600)
[[ -n "$token" ]] || s_fail "sb-token printed no token"

s_call () {   # s_call — the README's call; prints the body, fails unless it found Acme
    local body
    body=$(curl -sS -m 40 "$url" -H "Authorization: Bearer $token" \
         -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
         -d '{"jsonrpc":"2.0","id":1,"method":"tools/call",
              "params":{"name":"search_accounts","arguments":{"query":"acme"}}}') || return 1
    printf '%s\n' "$body"
    grep -q '"result"' <<<"$body" && ! grep -Eq '"isError" *: *true' <<<"$body" &&
        grep -q 'Acme' <<<"$body"
}
body=$(s_call) || s_fail "the README's call failed: $body"
s_phase "the README's call answered through 127.0.0.1:$port: $(head -c 120 <<<"$body")…"

# --- sb-admin, as docker/README.md runs it; the user signs in ------------------
out=$(docker exec "$gw" sb-admin --admin-key-file /run/secrets/admin_key user add demo demo@example.com) ||
    s_fail "sb-admin user add in the gateway container: $out"
password=$(sed -n 's/^password: //p' <<<"$out")
[[ -n "$password" ]] || s_fail "sb-admin printed no password: $out"
sb_farm_signin "$SB_PUBLIC_URL" demo demo@example.com "$password" ||
    s_fail "the demo user made with sb-admin could not sign in"
s_phase "sb-admin (admin_key secret) added demo@example.com; it signed in on /authorize (302 with a code)"

# --- row-level security, as the services' role, from a container -------------
# psql in the postgres container reaches the server by its service name,
# over the compose network, with the role's password (scram).
s_sql () {
    docker exec -i "$pg" sh -c \
        'PGPASSWORD=$(cat /run/secrets/db_password) exec psql -X -tA -v ON_ERROR_STOP=1 \
             "host=postgres dbname=switchboard user=switchboard"' <<<"$1"
}
who=$(s_sql "SELECT current_user, rolsuper, rolbypassrls, (SELECT tableowner FROM pg_tables WHERE tablename = 'connections')
             FROM pg_roles WHERE rolname = current_user;") || s_fail "the services' role cannot log in"
[[ "$who" == "switchboard|f|f|switchboard" ]] ||
    s_fail "the services' role must be no superuser, not bypass RLS and own the tables: $who"
s_rls () {    # s_rls TENANT — how many connections rows TENANT sees
    s_sql "BEGIN; SELECT set_config('switchboard.tenant_id', '$1', true) \\g /dev/null
           SELECT count(*) FROM connections; COMMIT;" | grep -E '^[0-9]+$'
}
own=$(s_rls demo) || s_fail "the RLS query as tenant demo failed"
other=$(s_rls acme-other) || s_fail "the RLS query as another tenant failed"
none=$(s_sql "SELECT count(*) FROM connections;") || s_fail "the RLS query as no tenant failed"
[[ "$own" -ge 1 ]] || s_fail "tenant demo sees none of its own connections (got '$own')"
[[ "$other" == 0 && "$none" == 0 ]] ||
    s_fail "row-level security leaks: another tenant sees $other rows, no tenant $none"
s_phase "RLS holds for role switchboard: demo sees $own row(s), another tenant 0, no tenant 0"

# --- scale to three api workers ------------------------------------------------
# s_api_count N — true once the broker's latest api registration counts N.
s_api_count () {
    local last
    last=$(docker logs "$broker" 2>&1 | grep 'worker_ready' |
           grep 'service=api ' | tail -n 1 | sed -nE 's/.*workers=([0-9]+).*/\1/p')
    [[ "$last" == "$1" ]]
}
"${compose[@]}" up -d --scale api-worker=3 api-worker >>"$work/up.log" 2>&1 ||
    s_fail "--scale api-worker=3"
s_wait "$SB_COMPOSE_EVENT_S" "the broker did not count 3 api workers" s_api_count 3
mapfile -t api < <(s_containers api-worker)
((${#api[@]} == 3)) || s_fail "${#api[@]} api-worker containers, not 3"
s_wait "$SB_COMPOSE_READY_S" "the scaled farm did not become healthy" s_all_ready
s_phase "scaled: 3 api-worker containers, the broker counts workers=3 for api"

# --- a worker killed inside its container ------------------------------------
victim=${api[0]}
restarts=$(docker inspect -f '{{.RestartCount}}' "$victim")
registered=$(docker logs "$broker" 2>&1 | grep -c 'worker_ready.*service=api ' || true)
docker exec "$victim" sh -c 'kill -KILL $(cut -d" " -f1 /proc/1/task/1/children)' ||
    s_fail "could not kill the worker process in $victim"
for ((i = 1; i <= SB_COMPOSE_CALLS; i++)); do
    body=$(s_call) || s_fail "call $i after the kill failed: $body"
done
s_restarted () { (($(docker inspect -f '{{.RestartCount}}' "$victim") > restarts)); }
s_wait "$SB_COMPOSE_EVENT_S" "the killed worker's container was not restarted" s_restarted
s_reregistered () {
    (($(docker logs "$broker" 2>&1 | grep -c 'worker_ready.*service=api ') > registered))
}
s_wait "$SB_COMPOSE_EVENT_S" "the restarted worker did not register with the broker" s_reregistered
s_wait "$SB_COMPOSE_READY_S" "the restarted worker did not become healthy" s_all_ready
body=$(s_call) || s_fail "the call after the restart failed: $body"
s_phase "killed the worker in ${victim:0:12}: $SB_COMPOSE_CALLS calls answered meanwhile; restarted (policy), registered again"

# --- SIGHUP reloads the connectors ---------------------------------------------
s_reloads () {   # s_reloads ID — how many connectors_reloaded lines ID logged
    docker logs "$1" 2>&1 | grep -c '"connectors_reloaded"' || true
}
declare -A before
for id in $gw "${api[@]}"; do before[$id]=$(s_reloads "$id"); done
"${compose[@]}" kill -s HUP gateway api-worker >/dev/null 2>&1 || s_fail "kill -s HUP"
s_all_reloaded () {
    local id
    for id in "${!before[@]}"; do
        (($(s_reloads "$id") > before[$id])) || return 1
    done
}
s_wait "$SB_COMPOSE_EVENT_S" "SIGHUP: not every gateway and api worker logged connectors_reloaded" s_all_reloaded
body=$(s_call) || s_fail "the call after the reload failed: $body"
s_phase "SIGHUP: the gateway and the 3 api workers reloaded their connectors"

# --- down, volumes included ------------------------------------------------------
if [[ "${SB_COMPOSE_KEEP:-0}" == 1 ]]; then
    s_phase "SB_COMPOSE_KEEP=1: the farm stays up (project $project)"
    exit 0
fi
"${compose[@]}" down -v --remove-orphans >>"$work/up.log" 2>&1 || s_fail "docker-compose down -v"
left="$(docker ps -aq --filter "label=com.docker.compose.project=$project")$(docker volume ls -q --filter "label=com.docker.compose.project=$project")$(docker network ls -q --filter "label=com.docker.compose.project=$project")"
[[ -z "$left" ]] || sb_die "down -v left containers, volumes or networks: $left"
s_phase "down -v: nothing of project $project is left; PASS"
