#!/bin/bash
# tests/47_e2e_quotas.sh BUILD_DIR WORK_DIR — issue 22 end to end through a
# whole farm (scripts/farm.sh: PostgreSQL, three gateways on one broker,
# the real sb-admin): per-tenant plans enforced at the broker
# (docs/QUOTAS.md, PROTOCOL.md "Quotas").
#
#   1. Rate: plan e2e-rate (RATE per minute, burst BURST, nothing else
#      limited) made with `sb-admin plan create`, tenant qrate on it; once
#      a call's RateLimit-Policy names the plan, HAMMER_CLIENTS clients
#      spread over the three gateways call search_accounts for HAMMER_S
#      seconds. The calls answered are at most BURST + RATE × t / 60 (t:
#      from the first request sent to the last answer) and at least BURST;
#      every other answer is isError with `_meta.error_type` rate_limited
#      and `retry_after` ≥ 1; an admitted call's response carries the
#      RateLimit-Policy and RateLimit headers.
#   2. `sb-admin plan set e2e-rate --rate … --burst …`: within seconds (no
#      restart) the policy header says the new rate and a burst of calls
#      the old plan refused is answered.
#   3. Monthly: plan e2e-month (MONTHLY units), tenant qmonth; a tool of
#      cost 5 (the fixture connector sandbox-quota) twice, then refused
#      with error_type monthly_quota_exceeded and a sentence saying so;
#      `sb-admin usage qmonth` shows the calls (within the flush).
#   4. Broker restart (SIGTERM by PID, started again): once the quota
#      service's snapshot reached the new broker (the policy header names
#      a tenant's plan again), qmonth is still refused monthly and
#      `sb-admin usage` still shows 10 calls.
#   5. In-flight: plan e2e-flight (FLIGHT jobs at once); the sandbox holds
#      search_contacts for SLOW_MS; FLIGHT slow calls running, the next
#      call is refused too_many_in_flight at once; once they ended a call
#      is served again.
#   6. Upstream budget: sandbox-quota declares 3 requests per hour per
#      connection: three calls answered, the fourth isError
#      upstream_budget_exhausted; another tenant's connection is not spent.
#   7. Admin API bad input: negative, absurd and non-integer limits 400
#      invalid_request naming the field, an unknown plan 404, a billing
#      anchor of 29 400, usage of an unknown tenant 404, a tenant moved
#      to an unknown plan 422.
#   8. Admin API 429: the broker runs --default-rate ADMIN_RATE (the
#      reserved tenant _admin has no plan): ADMIN_BURST_CALLS requests at
#      once get some 429 with Retry-After and {"error": "rate_limited"}.
#
# Every wait is a bounded poll on an answer or an event.
# shellcheck disable=SC2015  # `A && B || fail …`: fail when either fails
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/farm.sh
source "$root/scripts/farm.sh"
build=$(cd "${1:?usage: $0 BUILD_DIR WORK_DIR}" && pwd)
work=${2:?usage: $0 BUILD_DIR WORK_DIR}

GATEWAYS=3              # gateways hammered at once
RATE=120                # e2e-rate: cost units per minute
BURST=10                # e2e-rate: burst
HAMMER_CLIENTS=40       # clients at once, spread over the gateways
HAMMER_S=8              # how long they hammer
HAMMER_BATCH=120        # calls one curl process sends (over its share of the clients)
NEW_RATE=60000          # e2e-rate after `plan set`
NEW_BURST=1000
NEW_BURST_CALLS=30      # calls at once that the new plan must all answer
MONTHLY=12              # e2e-month: cost units per period (the costly tool costs 5)
FLIGHT=2                # e2e-flight: jobs at once
SLOW_MS=4000            # the sandbox's delay of the slow calls
ADMIN_RATE=60           # the broker's default rate (tenant _admin): per minute
ADMIN_BURST=20          # …and burst
ADMIN_BURST_CALLS=60    # admin requests at once in step 8
T_POLL_S=30             # any condition polled for

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
started=$SECONDS
phase_started=$SECONDS

fail () { echo "FAIL: $*" >&2; exit 1; }
phase () {
    echo "--- $* (previous step $((SECONDS - phase_started)) s)"
    phase_started=$SECONDS
}

pids=()     # this script's own background calls (the farm's processes are the farm's)
s_cleanup () {
    local rc=$?
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    sb_farm_stop || rc=1
    echo "total $((SECONDS - started)) s"
    exit $rc
}
trap s_cleanup EXIT

phase "starting the farm ($GATEWAYS gateways)"
SB_FARM_PG_MODE=fresh SB_FARM_FSYNC=off SB_GATEWAY_PORT=0 SB_FARM_GATEWAYS=$GATEWAYS \
SB_FARM_CONNECTORS="$root/connectors:$root/tests/fixtures/connectors/quota" \
SB_FARM_SANDBOX_CONNECTORS=sandbox-crm,sandbox-quota \
SB_FARM_BROKER_ARGS="--quotas on --usage-flush-ms 500 --default-rate $ADMIN_RATE --default-burst $ADMIN_BURST" \
SB_FARM_TOKEN_ARGS="--limits-poll-ms 500" \
    sb_farm_start "$build" "$work/farm" >"$work/farm.out" 2>&1 ||
    { cat "$work/farm.out"; fail "the farm did not start"; }
read -r -a gateway_urls <<<"$SB_FARM_GATEWAY_URLS"
((${#gateway_urls[@]} == GATEWAYS)) || fail "SB_FARM_GATEWAY_URLS names ${#gateway_urls[@]} gateways"
S=$SB_FARM_SANDBOX_URL
admin_key=$(head -n 1 "$SB_FARM_DIR/admin.key")

# ---------------------------------------------------------------------
# Helpers

# s_admin ARGS… — sb-admin against the farm (stdout its answer); a 429
# (step 8 spends the admin API's rate) is tried again after a second.
s_admin () {
    local i rc out
    for ((i = 0; i < T_POLL_S; i++)); do
        rc=0
        out=$(sb_farm_admin "$@" 2>"$work/admin.err") || rc=$?
        if ((rc == 0)); then
            printf '%s\n' "$out"
            return 0
        fi
        grep -qiE 'rate_limited|429' "$work/admin.err" || break
        sleep 1
    done
    cat "$work/admin.err" >&2
    return "$rc"
}

# s_mint TENANT — a user token for TENANT.
s_mint () {
    "$SB_FARM_BIN/sb-token" --key-file "$SB_FARM_DIR/token.key" --tenant "$1" --subject "user:$1" \
        --scope "mcp:tools mcp:write" --audience "$SB_FARM_MCP_URL" --ttl 3600
}

# s_post URL TOKEN TOOL ARGS_JSON HEADERS_FILE — one stateless tools/call
# to URL/mcp; prints the JSON-RPC message (plain JSON, or an SSE stream's
# last data line) and leaves the response headers in HEADERS_FILE.
s_post () {
    local body
    body=$(curl -sS -m 30 -D "$5" -X POST "$1/mcp" -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"'"$3"'","arguments":'"$4"'}}') ||
        return 1
    if [[ $body == "{"* ]]; then
        printf '%s\n' "$body"
    else
        sed -n 's/^data: *//p' <<<"$body" | grep -E '^\{.*"(result|error)"' | tail -n 1
    fi
}

# s_call TOKEN TOOL ARGS_JSON — s_post on the first gateway; headers in $work/last.h.
s_call () { s_post "$SB_FARM_GATEWAY_URL" "$1" "$2" "$3" "$work/last.h"; }

# s_header NAME — a header of the last s_call (value only).
s_header () {
    tr -d '\r' <"$work/last.h" | sed -n "s/^$1: *//Ip"
}

s_ok () { [[ $(jq -r 'has("result") and (.result.isError // false) == false' <<<"$1") == true ]]; }
s_error_type () { jq -r '.result._meta.error_type // empty' <<<"$1"; }
s_retry_after () { jq -r '.result._meta.retry_after // empty' <<<"$1"; }
s_text () { jq -r '[.result.content[]? | select(.type == "text") | .text] | join("\n")' <<<"$1"; }

# s_refused MESSAGE ERROR_TYPE WHAT — asserts MESSAGE is an isError result
# of ERROR_TYPE with retry_after ≥ 1 and a sentence.
s_refused () {
    local msg=$1 type=$2 what=$3 retry text
    [[ $(jq -r '.result.isError // false' <<<"$msg") == true ]] || fail "$what: not isError: $msg"
    [[ $(s_error_type "$msg") == "$type" ]] || fail "$what: error_type is not $type: $msg"
    retry=$(s_retry_after "$msg")
    [[ $retry =~ ^[0-9]+$ ]] && ((retry >= 1)) || fail "$what: retry_after is not ≥ 1: $msg"
    text=$(s_text "$msg")
    [[ ${#text} -ge 20 && $text == *.* ]] || fail "$what: no sentence: $msg"
}

# s_wait_policy TOKEN TOOL ARGS PLAN [Q] — calls until an answered call's
# RateLimit-Policy names PLAN (with q=Q when given): the broker has the
# tenant's plan. Prints the calls it made.
s_wait_policy () {
    local token=$1 tool=$2 args=$3 plan=$4 q=${5:-} i msg policy
    for ((i = 1; i <= T_POLL_S * 4; i++)); do
        msg=$(s_call "$token" "$tool" "$args") || fail "$tool: transport error"
        policy=$(s_header RateLimit-Policy)
        if s_ok "$msg" && [[ $policy == "\"$plan\";"* ]] &&
               { [[ -z $q ]] || [[ $policy == *";q=$q;"* || $policy == *";q=$q" ]]; }; then
            echo "$i"
            return 0
        fi
        sleep 0.25
    done
    fail "no call answered with RateLimit-Policy for $plan${q:+ q=$q} within $T_POLL_S s (last: $policy; $msg)"
}

# s_usage TENANT — `sb-admin usage TENANT --json`.
s_usage () { s_admin --json usage "$1"; }

# s_wait_month_calls TENANT N — polls sb-admin usage until month.calls is N.
s_wait_month_calls () {
    local i calls=
    for ((i = 0; i < T_POLL_S; i++)); do
        calls=$(s_usage "$1" | jq -r '.month.calls // empty')
        [[ $calls == "$2" ]] && return 0
        sleep 1     # the admin API's own rate (step 8) is ADMIN_RATE per minute
    done
    fail "sb-admin usage $1: month.calls is ${calls:-none}, not $2"
}

# s_api METHOD PATH [JSON] — the admin API with the operator key; prints
# "STATUS BODY".
s_api () {
    local args=(-sS -m 30 -o "$work/api.body" -w '%{http_code}' -X "$1"
                -H "Authorization: Bearer $admin_key" "$SB_FARM_GATEWAY_URL/admin/$2")
    [[ -n ${3:-} ]] && args+=(-H 'Content-Type: application/json' -d "$3")
    local status
    status=$(curl "${args[@]}") || return 1
    printf '%s %s\n' "$status" "$(cat "$work/api.body")"
}

# s_api_expect METHOD PATH JSON STATUS ERROR [WORD] — the admin API answers
# STATUS with {"error": ERROR} and a message (naming WORD when given).
s_api_expect () {
    local out status body
    out=$(s_api "$1" "$2" "$3") || fail "$1 /admin/$2: transport error"
    status=${out%% *}
    body=${out#* }
    [[ $status == "$4" ]] || fail "$1 /admin/$2 $3: status $status, not $4: $body"
    [[ $(jq -r '.error // empty' <<<"$body") == "$5" ]] || fail "$1 /admin/$2 $3: error is not $5: $body"
    local message
    message=$(jq -r '.message // .error_description // empty' <<<"$body")
    [[ -n $message ]] || fail "$1 /admin/$2 $3: no message: $body"
    [[ -z ${6:-} || $message == *"$6"* ]] || fail "$1 /admin/$2 $3: the message does not name $6: $message"
}

# ---------------------------------------------------------------------
phase "1. rate: $RATE/min burst $BURST hammered from $GATEWAYS gateways by $HAMMER_CLIENTS clients"
s_admin plan create e2e-rate "E2E rate" --rate "$RATE" --burst "$BURST" --in-flight 0 \
    --monthly unlimited --weight 1 >/dev/null || fail "sb-admin plan create e2e-rate"
shown=$(s_admin --json plan show e2e-rate) || fail "sb-admin plan show e2e-rate"
[[ $(jq -r '.plan.rate_per_min' <<<"$shown") == "$RATE" && $(jq -r '.plan.burst' <<<"$shown") == "$BURST" ]] ||
    fail "plan show e2e-rate: $shown"
s_admin tenant create qrate "Q Rate" --plan e2e-rate >/dev/null || fail "sb-admin tenant create qrate"
token_rate=$(s_mint qrate)
probes=$(s_wait_policy "$token_rate" search_accounts '{"query":"acme"}' e2e-rate "$RATE")
echo "the broker applied e2e-rate after $probes call(s)"
ratelimit=$(s_header RateLimit)
[[ $ratelimit =~ ^\"e2e-rate\"\;r=[0-9]+\;t=[0-9]+$ ]] || fail "RateLimit header: '$ratelimit'"
[[ $(s_header RateLimit-Policy) == "\"e2e-rate\";q=$RATE;w=60" ]] ||
    fail "RateLimit-Policy header: '$(s_header RateLimit-Policy)'"

# s_hammer URL TOKEN UNTIL DIR CLIENTS — CLIENTS connections to one gateway
# calling search_accounts until $EPOCHREALTIME passes UNTIL: one curl
# process at a time sends HAMMER_BATCH calls over CLIENTS parallel
# connections (a process per call would measure fork, not the broker, on
# a loaded machine); each answer's body lands in DIR/<batch>.<n>.
s_hammer () {
    local url=$1 token=$2 deadline=$3 dir=$4 clients=$5 batch=0 n outputs
    mkdir -p "$dir"
    while [[ ${EPOCHREALTIME/./} -lt $deadline ]]; do
        outputs=()
        for ((n = 0; n < HAMMER_BATCH; n++)); do
            outputs+=(-o "$dir/$batch.$n" "$url/mcp")
        done
        curl -sS --no-progress-meter -m 30 --parallel --parallel-immediate --parallel-max "$clients" -X POST \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            -H 'Accept: application/json, text/event-stream' \
            -d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_accounts","arguments":{"query":"acme"}}}' \
            "${outputs[@]}" 2>>"$dir.err" || true
        batch=$((batch + 1))
    done
}
t0=${EPOCHREALTIME/./}
deadline=$((t0 + HAMMER_S * 1000000))
pids=()
for ((g = 0; g < GATEWAYS; g++)); do
    s_hammer "${gateway_urls[g]}" "$token_rate" "$deadline" "$work/hammer/$g" \
        $(((HAMMER_CLIENTS + GATEWAYS - 1 - g) / GATEWAYS)) &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
pids=()
t1=${EPOCHREALTIME/./}
# One JSON-RPC message a line (an SSE answer's data line), or a marker.
for f in "$work"/hammer/*/*; do
    body=$(<"$f")
    if [[ $body == "{"* ]]; then
        printf '%s\n' "${body//$'\n'/}"
    elif [[ -n $body ]]; then
        sed -n 's/^data: *//p' <<<"$body" | grep -E '^\{.*"(result|error)"' | tail -n 1
    else
        echo '{"transport_error":true}'
    fi
done >"$work/hammer.all"
for ((g = 0; g < GATEWAYS; g++)); do
    [[ ! -s $work/hammer/$g.err ]] || fail "the hammer's calls to gateway $g failed: $(head -n 3 "$work/hammer/$g.err")"
done
total=$(wc -l <"$work/hammer.all")
answered=$(jq -c 'select(has("result") and (.result.isError // false) == false)' "$work/hammer.all" | wc -l)
limited=$(jq -c 'select(.result.isError == true and .result._meta.error_type == "rate_limited"
                        and (.result._meta.retry_after | type) == "number" and .result._meta.retry_after >= 1)' \
    "$work/hammer.all" | wc -l)
elapsed_us=$((t1 - t0))
# At most BURST + RATE × t / 60 with t the whole hammer (integer µs math).
bound=$((BURST + RATE * elapsed_us / 60000000))
echo "hammer: $total answers in $((elapsed_us / 1000)) ms: $answered answered, $limited rate_limited (bound $bound, floor $BURST)"
((total > bound * 3)) || fail "the hammer sent too few calls ($total) to test the limit"
((answered + limited == total)) ||
    fail "$((total - answered - limited)) answers were neither answered nor rate_limited: $(jq -c -n '[inputs | select((has("result") and (.result.isError // false) == false) | not) | select(.result._meta.error_type != "rate_limited")] | .[:3][]' "$work/hammer.all")"
((answered <= bound)) || fail "$answered calls answered, more than burst + rate × t / 60 = $bound"
((answered >= BURST)) || fail "only $answered calls answered, fewer than the burst $BURST"
sample=$(jq -c -n 'first(inputs | select(.result._meta.error_type == "rate_limited"))' "$work/hammer.all")
s_refused "$sample" rate_limited "a rate refusal"
echo "a refusal says: $(s_text "$sample")"

# ---------------------------------------------------------------------
phase "2. sb-admin plan set raises the rate without a restart"
s_admin plan set e2e-rate --rate "$NEW_RATE" --burst "$NEW_BURST" >/dev/null || fail "sb-admin plan set e2e-rate"
changed_at=$SECONDS
s_wait_policy "$token_rate" search_accounts '{"query":"acme"}' e2e-rate "$NEW_RATE" >/dev/null
echo "the new rate applied within $((SECONDS - changed_at)) s"
pids=()
for ((c = 0; c < NEW_BURST_CALLS; c++)); do
    s_post "${gateway_urls[c % GATEWAYS]}" "$token_rate" search_accounts '{"query":"acme"}' \
        "$work/burst.$c.h" >"$work/burst.$c" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a call of the burst failed in transport"; done
for ((c = 0; c < NEW_BURST_CALLS; c++)); do
    s_ok "$(cat "$work/burst.$c")" || fail "call $c of the burst under the raised plan: $(cat "$work/burst.$c")"
done

# ---------------------------------------------------------------------
phase "3. monthly allowance of $MONTHLY with a tool of cost 5"
s_admin plan create e2e-month "E2E month" --rate 0 --burst 0 --in-flight 0 --monthly "$MONTHLY" \
    --weight 1 >/dev/null || fail "sb-admin plan create e2e-month"
s_admin tenant create qmonth "Q Month" --plan e2e-month >/dev/null || fail "sb-admin tenant create qmonth"
s_admin tenant create qother "Q Other" --plan e2e-rate >/dev/null || fail "sb-admin tenant create qother"
token_month=$(s_mint qmonth)
token_other=$(s_mint qother)
# The plan has no rate, so no policy header: wait for qother's instead
# (created after qmonth: the push that names it names qmonth too).
s_wait_policy "$token_other" search_accounts '{"query":"acme"}' e2e-rate >/dev/null
for i in 1 2; do
    msg=$(s_call "$token_month" costly_get_account '{"id":"acc_0001"}') || fail "costly call $i: transport"
    s_ok "$msg" || fail "costly call $i of qmonth (10 of $MONTHLY units): $msg"
done
msg=$(s_call "$token_month" costly_get_account '{"id":"acc_0001"}') || fail "costly call 3: transport"
s_refused "$msg" monthly_quota_exceeded "the third costly call"
text=$(s_text "$msg")
grep -qi 'month' <<<"$text" || fail "the monthly refusal does not say monthly: $text"
grep -qi 'administrator' <<<"$text" || fail "the monthly refusal has no upgrade hint: $text"
echo "the monthly refusal says: $text"
msg=$(s_call "$token_month" search_accounts '{"query":"acme"}') || fail "cheap call: transport"
s_ok "$msg" || fail "a cost-1 call within the allowance (11 of $MONTHLY): $msg"
s_wait_month_calls qmonth 11
usage=$(s_usage qmonth)
echo "sb-admin usage qmonth: $(jq -c '{plan, month, minute}' <<<"$usage")"
[[ $(jq -r '.month.allowance' <<<"$usage") == "$MONTHLY" ]] || fail "usage: allowance: $usage"
[[ $(jq -r '.month.remaining' <<<"$usage") == 1 ]] || fail "usage: remaining: $usage"
[[ $(jq -r '.month.refused.monthly // 0' <<<"$usage") -ge 1 ]] || fail "usage: the refusal is not counted: $usage"
s_admin usage qmonth >"$work/usage.txt" || fail "sb-admin usage qmonth (table)"
grep -q 11 "$work/usage.txt" || fail "sb-admin usage's table does not show 11 calls: $(cat "$work/usage.txt")"

# ---------------------------------------------------------------------
phase "4. broker restart: usage persisted, the allowance stays spent"
broker_pid=
while read -r name pid; do [[ $name == broker ]] && broker_pid=$pid; done <"$SB_FARM_DIR/pids"
[[ -n $broker_pid ]] || fail "no broker PID"
sb_stop_pid "$broker_pid" 15 || fail "the broker did not exit 0 on SIGTERM"
sb_farm_respawn broker
sb_wait_log "$SB_FARM_DIR/logs/broker.log" '"event" *: *"ready"' 30 "$SB_FARM_RESPAWNED_PID" ||
    fail "the broker did not start again"
# Tenants are on the defaults until the snapshot: wait for qother's plan.
s_wait_policy "$token_other" search_accounts '{"query":"acme"}' e2e-rate >/dev/null
msg=$(s_call "$token_month" costly_get_account '{"id":"acc_0001"}') || fail "costly call after restart: transport"
s_refused "$msg" monthly_quota_exceeded "a costly call after the restart"
msg=$(s_call "$token_month" search_accounts '{"query":"acme"}') || fail "cheap call after restart: transport"
s_ok "$msg" || fail "the last unit after the restart (12 of $MONTHLY): $msg"
msg=$(s_call "$token_month" search_accounts '{"query":"acme"}') || fail "cheap call after restart: transport"
s_refused "$msg" monthly_quota_exceeded "a call past the allowance after the restart"
s_wait_month_calls qmonth 12

# ---------------------------------------------------------------------
phase "5. in-flight cap: $FLIGHT slow calls, the next one refused, then served"
s_admin plan create e2e-flight "E2E flight" --rate 0 --burst 0 --in-flight "$FLIGHT" \
    --monthly unlimited --weight 1 >/dev/null || fail "sb-admin plan create e2e-flight"
s_admin tenant create qflight "Q Flight" --plan e2e-flight >/dev/null || fail "sb-admin tenant create qflight"
s_admin tenant plan qother e2e-flight >/dev/null || fail "sb-admin tenant plan qother e2e-flight"
token_flight=$(s_mint qflight)
# qother moved to e2e-flight after qflight was made: once qother's calls
# carry no e2e-rate policy any more, the broker knows both.
for ((i = 0; i < T_POLL_S * 4; i++)); do
    msg=$(s_call "$token_other" search_accounts '{"query":"acme"}') || fail "qother: transport"
    s_ok "$msg" && [[ -z $(s_header RateLimit-Policy) ]] && break
    sleep 0.25
done
[[ -z $(s_header RateLimit-Policy) ]] || fail "qother still has a rate policy after its plan change"
curl -sS -m 10 -X POST "$S/_sandbox/faults" -H 'Content-Type: application/json' \
    -d "{\"delay_ms\":$SLOW_MS,\"path_prefix\":\"/v1/contacts\",\"count\":$FLIGHT}" >/dev/null ||
    fail "the sandbox refused the delay"
pids=()
for ((c = 0; c < FLIGHT; c++)); do
    s_post "${gateway_urls[c % GATEWAYS]}" "$token_flight" search_contacts '{"query":"a"}' \
        "$work/slow.$c.h" >"$work/slow.$c" &
    pids+=($!)
done
for ((i = 0; i < T_POLL_S * 10; i++)); do
    [[ $(curl -sS -m 10 "$S/_sandbox/stats" | jq -r '.delayed_now') == "$FLIGHT" ]] && break
    sleep 0.1
done
[[ $(curl -sS -m 10 "$S/_sandbox/stats" | jq -r '.delayed_now') == "$FLIGHT" ]] ||
    fail "the sandbox is not holding $FLIGHT slow calls"
before=${EPOCHREALTIME/./}
msg=$(s_call "$token_flight" search_accounts '{"query":"acme"}') || fail "call over the cap: transport"
took_ms=$(((${EPOCHREALTIME/./} - before) / 1000))
s_refused "$msg" too_many_in_flight "a call over the in-flight cap"
((took_ms < SLOW_MS / 2)) || fail "the in-flight refusal took $took_ms ms: it waited"
echo "refused in $took_ms ms: $(s_text "$msg")"
for pid in "${pids[@]}"; do wait "$pid" || fail "a slow call failed in transport"; done
for ((c = 0; c < FLIGHT; c++)); do
    s_ok "$(cat "$work/slow.$c")" || fail "slow call $c: $(cat "$work/slow.$c")"
done
msg=$(s_call "$token_flight" search_accounts '{"query":"acme"}') || fail "call after the slow ones: transport"
s_ok "$msg" || fail "a call once the slow ones ended: $msg"

# ---------------------------------------------------------------------
phase "6. upstream budget: 3 requests per hour per connection"
token_budget=$(s_mint qrate)
for i in 1 2 3; do
    msg=$(s_call "$token_budget" budget_get_account '{"id":"acc_0001"}') || fail "budget call $i: transport"
    s_ok "$msg" || fail "budget call $i: $msg"
done
msg=$(s_call "$token_budget" budget_get_account '{"id":"acc_0001"}') || fail "budget call 4: transport"
s_refused "$msg" upstream_budget_exhausted "the fourth budget call"
echo "the budget refusal says: $(s_text "$msg")"
msg=$(s_call "$token_flight" budget_get_account '{"id":"acc_0001"}') || fail "another tenant's budget call: transport"
s_ok "$msg" || fail "another tenant's connection was spent too: $msg"

# ---------------------------------------------------------------------
phase "7. admin API bad input"
s_api_expect PUT plans/e2e-rate '{"rate_per_min":-1}' 400 invalid_request rate_per_min
s_api_expect PUT plans/e2e-rate '{"burst":100000000000}' 400 invalid_request burst
s_api_expect PUT plans/e2e-rate '{"max_in_flight":"many"}' 400 invalid_request max_in_flight
s_api_expect PUT plans/e2e-rate '{"weight":0}' 400 invalid_request weight
s_api_expect PUT plans/e2e-rate '{"monthly_calls":1.5}' 400 invalid_request monthly_calls
s_api_expect PUT plans/no-such-plan '{"rate_per_min":10}' 404 not_found
s_api_expect PUT tenants/qrate/billing-anchor '{"day":29}' 400 invalid_request day
s_api_expect GET tenants/no-such-tenant/usage '' 404 not_found
s_api_expect PUT tenants/qrate/plan '{"plan":"no-such-plan"}' 422 unknown_plan
out=$(s_api GET plans/e2e-rate) || fail "GET /admin/plans/e2e-rate: transport"
[[ ${out%% *} == 200 && $(jq -r '.plan.rate_per_min' <<<"${out#* }") == "$NEW_RATE" ]] ||
    fail "the refused changes changed e2e-rate: $out"

# ---------------------------------------------------------------------
phase "8. admin API 429 with Retry-After (default rate $ADMIN_RATE/min burst $ADMIN_BURST for _admin)"
pids=()
for ((c = 0; c < ADMIN_BURST_CALLS; c++)); do
    curl -sS -m 30 -D "$work/admin.$c.h" -o "$work/admin.$c" \
        -H "Authorization: Bearer $admin_key" "${gateway_urls[c % GATEWAYS]}/admin/plans" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "an admin request failed in transport"; done
n200=0 n429=0
for ((c = 0; c < ADMIN_BURST_CALLS; c++)); do
    status=$(head -n 1 "$work/admin.$c.h" | awk '{print $2}')
    case $status in
        200) n200=$((n200 + 1)) ;;
        429)
            n429=$((n429 + 1))
            retry=$(tr -d '\r' <"$work/admin.$c.h" | sed -n 's/^[Rr]etry-[Aa]fter: *//p')
            [[ $retry =~ ^[0-9]+$ ]] && ((retry >= 1)) || fail "429 without Retry-After ≥ 1: $(cat "$work/admin.$c.h")"
            [[ $(jq -r '.error' "$work/admin.$c") == rate_limited ]] || fail "429 body: $(cat "$work/admin.$c")"
            [[ -n $(jq -r '.message // empty' "$work/admin.$c") ]] || fail "429 without a message: $(cat "$work/admin.$c")"
            ;;
        *) fail "admin request $c answered $status: $(cat "$work/admin.$c")" ;;
    esac
done
echo "admin burst: $n200 answered, $n429 × 429"
((n429 >= 1)) || fail "$ADMIN_BURST_CALLS admin requests at once got no 429"
((n200 >= 1)) || fail "no admin request of the burst was answered"

sb_farm_alive || fail "a farm process died"
phase "done"
