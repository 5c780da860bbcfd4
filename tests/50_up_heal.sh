#!/bin/bash
# tests/50_up_heal.sh BUILD_DIR FARM_DIR — scripts/up heals its farm. It
# starts `up` (this build's binaries, a farm in FARM_DIR), then kills each
# kind of process with SIGKILL, one after another — api worker, gateway,
# broker, sandbox, token worker, PostgreSQL — and after each sees up start
# it again (a new PID, a restart line in logs/up.log) and a real tools/call
# served again. Then SIGINT stops up, and every farm process must be gone.
# Every wait is a bounded poll.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/farm.sh
source "$root/scripts/farm.sh"
build=$(cd "${1:?usage: $0 BUILD_DIR FARM_DIR}" && pwd)
farm=${2:?usage: $0 BUILD_DIR FARM_DIR}

T_READY_S=120       # the farm starting (PostgreSQL, migrations, every process)
T_HEAL_S=90         # from a kill until a tools/call is served again
T_STOP_S=60         # up stopping everything after SIGINT
CALL_TIMEOUT_MS=10000   # the gateway's call deadline: a call sent into a dying farm ends by then

fail () { echo "FAIL: $*"; tail -n 40 "$out" 2>/dev/null || true; exit 1; }

rm -rf "$farm"
mkdir -p "$farm"
farm=$(cd "$farm" && pwd)
out=$farm.out
: >"$out"
# Job control on while starting it: a background job of a script would
# otherwise start with SIGINT ignored, which no trap can undo (bash), and
# SIGINT is what this test sends as Ctrl-C.
set -m
SB_UP_NO_BUILD=1 SB_UP_NO_DEPS=1 SB_BUILD_DIR=$build SB_UP_FARM_DIR=$farm \
    SB_GATEWAY_PORT=0 SB_FARM_FSYNC=off SB_FARM_GATEWAY_ARGS="--call-timeout-ms $CALL_TIMEOUT_MS" \
    "$root/scripts/up" >"$out" 2>&1 &
up=$!
set +m

# On any exit: stop up (SIGINT, then SIGKILL), then whatever it left.
s_cleanup () {
    if kill -0 "$up" 2>/dev/null; then
        kill -INT "$up" 2>/dev/null || true
        local deadline=$((SECONDS + T_STOP_S))
        while kill -0 "$up" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -KILL "$up" 2>/dev/null || true
    fi
    local name pid
    if [[ -s "$farm/pids" ]]; then
        while read -r name pid; do
            if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$build/bin/"; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$farm/pids"
    fi
    sb_pg_stop "$farm/pg"
}
trap s_cleanup EXIT

# s_pid NAME — the PID up's farm has for NAME now (postgres: the postmaster).
s_pid () {
    if [[ $1 == postgres ]]; then
        sb_pg_pid "$farm/pg" || true
    else
        awk -v n="$1" '$1 == n { p = $2 } END { if (p) print p }' "$farm/pids"
    fi
}

# s_served — one tools/call through the gateway answered with accounts.
s_served () {
    local body
    body=$(sb_farm_call "$token" tools/call \
        '{"name":"search_accounts","arguments":{"query":"acme"}}' 2>/dev/null) || return 1
    grep -q '"result"' <<<"$body" || return 1
    if grep -Eq '"isError" *: *true' <<<"$body"; then return 1; fi
    grep -qi 'acme' <<<"$body"
}

deadline=$((SECONDS + T_READY_S))
until grep -q 'switchboard is up' "$out"; do
    kill -0 "$up" 2>/dev/null || fail "scripts/up exited before the farm was up"
    ((SECONDS < deadline)) || fail "the farm was not up within $T_READY_S s"
    sleep 0.2
done
SB_FARM_MCP_URL=$(sed -n 's/^ *MCP endpoint *//p' "$out" | head -n 1)
[[ $SB_FARM_MCP_URL == http://127.0.0.1:*/mcp ]] || fail "no MCP endpoint in up's output"
token=$(<"$farm/demo.token")
s_served || fail "the first tools/call was not served"

for name in api-worker-1 gateway broker sandbox token-worker postgres; do
    old=$(s_pid "$name")
    if [[ -z "$old" ]] || ! kill -0 "$old" 2>/dev/null; then fail "$name has no running process"; fi
    echo "killing $name (pid $old)"
    kill -KILL "$old"
    # Restarted: a new PID, and up's restart line naming it in logs/up.log
    deadline=$((SECONDS + T_HEAL_S))
    new=
    until [[ -n "$new" && "$new" != "$old" ]] && kill -0 "$new" 2>/dev/null &&
          grep -q "\"event\":\"process_restarted\",\"msg\":\"$name restarted (pid $new)" \
              "$farm/logs/up.log"; do
        ((SECONDS < deadline)) || fail "$name was not restarted (with a line in logs/up.log) within $T_HEAL_S s"
        kill -0 "$up" 2>/dev/null || fail "scripts/up exited after $name was killed"
        sleep 0.2
        new=$(s_pid "$name")
    done
    grep -q "up: $name restarted (pid $new)" "$out" || fail "no restart line for $name on stdout"
    until s_served; do
        ((SECONDS < deadline)) || fail "no tools/call served within $T_HEAL_S s after killing $name"
        sleep 0.2
    done
    echo "  $name restarted (pid $new); a tools/call is served again"
done

# Ctrl-C: up stops every process, PostgreSQL included, and exits.
pids=$(awk '{ print $2 }' "$farm/pids")
pg=$(s_pid postgres)
kill -INT "$up"
deadline=$((SECONDS + T_STOP_S))
while kill -0 "$up" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "scripts/up did not stop within $T_STOP_S s of SIGINT"
    sleep 0.2
done
rc=0
wait "$up" || rc=$?
((rc == 130)) || fail "scripts/up exited with status $rc after SIGINT (expected 130)"
# (The postmaster removes its PID file, which pg_ctl waits for, a moment
# before it exits: allow that moment.)
deadline=$((SECONDS + 10))
for pid in $pids $pg; do
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "pid $pid still runs after up stopped"
        sleep 0.1
    done
done
if sb_pg_running "$farm/pg"; then fail "PostgreSQL still runs after up stopped"; fi
# Restarted processes stopped cleanly too (a sanitizer build reports in the logs).
if grep -l 'Sanitizer' "$farm"/logs/*.log; then fail "a sanitizer report in the logs above"; fi
echo "up heals: OK"
