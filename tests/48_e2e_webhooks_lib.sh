# shellcheck shell=bash
# tests/48_e2e_webhooks_lib.sh — what tests/48_e2e_webhooks.sh and
# tests/48_e2e_webhook_faults.sh share: the npm packages of the providers'
# own libraries, one farm (scripts/farm.sh, its own PostgreSQL), a tenant,
# endpoints with secrets the test knows, the node receiver, psql, polls.
# Source it after setting root, build and work; it sets a trap that stops
# everything this test started (receiver by PID, then the farm).
#
#   wh_start_farm [GATEWAY_ARGS] [WEBHOOK_ARGS]   the farm, at debug level
#   wh_endpoint NAME SCHEME SECRET [--option K=V]…  an endpoint of tenant
#                          $WH_TENANT on connector sandbox-crm; sets
#                          WH_ID[NAME] and WH_SECRET[NAME]
#   wh_secret_hex / wh_secret_whsec                 a new random secret
#   wh_receiver_start NAME                          the node receiver (PID,
#                          port in WH_RECEIVER_PORT[NAME], log WH_RECEIVER_LOG[NAME])
#   wh_receiver_control NAME JSON                   POST /_control
#   wh_psql SQL            one statement, superuser, the farm's database (-tA)
#   wh_wait SECONDS WHAT COMMAND…                   polls COMMAND every 0.1 s
#   wh_no_secret_in_logs                            fails if a log holds any secret used
# shellcheck disable=SC2034,SC2154  # WH_* are read by the tests that source this; root, build, work are theirs

# shellcheck source=scripts/farm.sh
source "$root/scripts/farm.sh"

WH_TENANT=whe2e
WH_NODE_DIR=$build/webhooks-node       # tests/webhooks/npm-ci.sh's install (the 38_wh_npm fixture's too)
WH_NODE=$WH_NODE_DIR/node_modules/.bin/node
declare -gA WH_ID=() WH_SECRET=() WH_RECEIVER_PORT=() WH_RECEIVER_LOG=() WH_RECEIVER_PID=()
WH_SECRETS=()                           # every secret this test used, for the log check
wh_pids=()                              # this test's own processes

fail () { echo "FAIL: $*" >&2; exit 1; }
phase () {
    echo "--- $* (previous step $((SECONDS - phase_started)) s)"
    phase_started=$SECONDS
}
started=$SECONDS
phase_started=$SECONDS

s_wh_cleanup () {
    local rc=$? pid
    for pid in "${wh_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${wh_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    sb_farm_stop || rc=1
    echo "total $((SECONDS - started)) s"
    exit $rc
}
trap s_wh_cleanup EXIT

# wh_npm — the providers' libraries (npm ci from tests/webhooks' lock,
# only when it changed), and this test's scripts beside them.
wh_npm () {
    "$root/tests/webhooks/npm-ci.sh" "$WH_NODE_DIR" >"$work/npm.out" 2>&1 ||
        { cat "$work/npm.out"; fail "tests/webhooks/npm-ci.sh"; }
    mkdir -p "$WH_NODE_DIR/e2e"
    cp "$root"/tests/48_e2e_webhooks_*.mjs "$WH_NODE_DIR/e2e/"
}

wh_start_farm () {
    SB_LOG_LEVEL=debug SB_FARM_PG_MODE=fresh SB_FARM_FSYNC=off SB_GATEWAY_PORT=0 \
    SB_FARM_GATEWAY_ARGS="${1:-}" SB_FARM_WEBHOOK_ARGS="${2:-}" \
        sb_farm_start "$build" "$work/farm" >"$work/farm.out" 2>&1 ||
        { cat "$work/farm.out"; fail "the farm did not start"; }
    sb_farm_admin tenant create "$WH_TENANT" "Webhooks e2e" >/dev/null ||
        fail "sb-admin tenant create $WH_TENANT"
}

wh_secret_hex () { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
wh_secret_whsec () { printf 'whsec_%s' "$(head -c 32 /dev/urandom | base64 -w0)"; }

wh_endpoint () {
    local name=$1 scheme=$2 secret=$3 out id
    shift 3
    printf '%s\n' "$secret" >"$work/secret.$name"
    out=$(sb_farm_admin --json webhooks endpoint create "$WH_TENANT" sandbox-crm --scheme "$scheme" \
              --secret-file "$work/secret.$name" "$@") || fail "sb-admin webhooks endpoint create ($name): $out"
    id=$(jq -r '.endpoint.id // empty' <<<"$out")
    [[ $id =~ ^we_[A-Za-z0-9_-]{24}$ ]] || fail "endpoint create ($name) gave no we_ ID: $out"
    [[ $(jq -r '.endpoint.path // empty' <<<"$out") == "/webhooks/$id" ]] ||
        fail "endpoint create ($name) gave no path /webhooks/$id: $out"
    grep -qF -- "$secret" <<<"$out" && fail "endpoint create ($name) echoed the secret it was given"
    WH_ID[$name]=$id
    WH_SECRET[$name]=$secret
    WH_SECRETS+=("$secret")
}

wh_receiver_start () {
    local name=$1 log=$work/receiver-$1.jsonl out=$work/receiver-$1.out i
    : >"$log"
    "$WH_NODE" "$WH_NODE_DIR/e2e/48_e2e_webhooks_receiver.mjs" "$log" >"$out" 2>&1 &
    WH_RECEIVER_PID[$name]=$!
    wh_pids+=($!)
    for ((i = 0; i < 100; i++)); do
        grep -q '^listening ' "$out" && break
        sleep 0.1
    done
    WH_RECEIVER_PORT[$name]=$(sed -n 's/^listening //p' "$out")
    [[ -n ${WH_RECEIVER_PORT[$name]} ]] || { cat "$out"; fail "the receiver $name did not start"; }
    WH_RECEIVER_LOG[$name]=$log
}

wh_receiver_control () {
    curl -sS -m 5 -X POST "http://127.0.0.1:${WH_RECEIVER_PORT[$1]}/_control" -d "$2" >/dev/null ||
        fail "receiver $1: /_control $2"
}

wh_psql () {
    "$SB_PG_BIN/psql" -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(<"$SB_FARM_DIR/pg/port")" \
        -U postgres -d switchboard -c "$1"
}

wh_wait () {
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    fail "$what (not within $seconds s)"
}

# wh_no_secret_in_logs — no farm log (debug level) and no output of this
# test's helpers holds a secret: the whole text, or the key of a whsec_.
wh_no_secret_in_logs () {
    local secret needle
    for secret in "${WH_SECRETS[@]}"; do
        for needle in "$secret" "${secret#whsec_}"; do
            if grep -rlF -- "$needle" "$SB_FARM_DIR/logs" >/dev/null 2>&1; then
                fail "a secret is in $(grep -rlF -- "$needle" "$SB_FARM_DIR/logs" | tr '\n' ' ')"
            fi
        done
    done
}
