#!/bin/bash
# tests/48_e2e_webhook_faults.sh BUILD_DIR WORK_DIR — issue 23's faults,
# each with an asserted outcome, through one farm (scripts/farm.sh: its own
# PostgreSQL; the webhook worker with a short retry schedule "0,2,2" and a
# 1 s delivery timeout). The load is sb-webhook-bench (bench/webhook_bench.c):
# unique Standard Webhooks events, signed as they are sent, over keep-alive
# connections, one "<n> <status>" line per answer.
#
#   1. PostgreSQL stopped while webhooks arrive: the providers get 5xx and
#      never a 2xx while it is down; once it is back, every event that got
#      a 2xx is stored exactly once, and sending the others again (as a
#      provider retries) stores them: the stored events are then exactly
#      the events sent.
#   2. The webhook worker SIGKILLed mid-batch under load: every event that
#      got a 2xx is stored once, none twice; after the worker is started
#      again, a resend of the rest stores exactly the rest.
#   3. An outbound receiver that hangs (past the delivery timeout), then
#      resets the connection, then answers 500: three attempts recorded
#      (status 0 with an error, 0, 500 with its excerpt), the delivery dead
#      (`sb-admin webhooks dead`); `sb-admin webhooks replay` once the
#      receiver answers 200: delivered, verified by standardwebhooks, its
#      attempts kept.
# Every wait is a bounded poll on an answer, a row or a log line.
# shellcheck disable=SC2015  # `A && B || fail …`: fail when either fails
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR WORK_DIR}" && pwd)
work=${2:?usage: $0 BUILD_DIR WORK_DIR}
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
# shellcheck source=tests/48_e2e_webhooks_lib.sh
source "$root/tests/48_e2e_webhooks_lib.sh"

CONNECTIONS=16          # the load's keep-alive connections
LOAD_MAX_MS=60000       # a load runs until the test stops it (SIGINT), at most this
BEFORE=200              # answers 2xx before a fault is made, and again after it
DOWN_5XX=32             # 5xx answers seen while PostgreSQL is down before it is started again
RESEND_ROUNDS=20        # a provider's retries of what was not acknowledged (0.5 s apart)
SCHEDULE=0,2,2          # the webhook worker's retry schedule: three attempts, then dead (2 s: time to switch the receiver)
T_POLL_S=20             # any condition polled for
BENCH=$build/bin/sb-webhook-bench
[[ -x $BENCH ]] || fail "$BENCH is not built"

phase "npm packages (tests/webhooks' lock)"
wh_npm

phase "starting the farm"
wh_start_farm "" "--webhook-allow-hosts 127.0.0.1 --webhook-retry-schedule $SCHEDULE --webhook-delivery-timeout-ms 1000"
wh_endpoint load standard "$(wh_secret_whsec)"
url="$SB_FARM_GATEWAY_URL/webhooks/${WH_ID[load]}"

# s_load PREFIX LOG [bench options…] — sb-webhook-bench in the background (pid in load_pid).
load_pid=
s_load () {
    local prefix=$1 log=$2
    shift 2
    : >"$log"
    "$BENCH" --url "$url" --secret-file "$work/secret.load" --prefix "$prefix" --log "$log" "$@" \
        >"$log.summary" 2>&1 &
    load_pid=$!
    wh_pids+=("$load_pid")
}
s_count () { awk -v re="$2" '$2 ~ re' "$1" | wc -l; }
s_at_least () { (($(s_count "$1" "$2") >= $3)); }   # LOG STATUS_RE N
# s_stored PREFIX — the numbers of the stored events of PREFIX, sorted, one a line.
s_stored () {
    wh_psql "SELECT substr (event_key, length ('msg_$1_') + 1) FROM webhook_events
             WHERE endpoint_id = '${WH_ID[load]}' AND event_key LIKE 'msg\\_$1\\_%'" | sort -n
}
# s_resend PREFIX LOG — sends again what LOG says was not answered 2xx,
# round after round, until every event has been acknowledged once.
s_resend () {
    local prefix=$1 log=$2 round
    awk '$2 !~ /^2/ { print $1 }' "$log" | sort -n >"$work/$prefix.todo"
    for ((round = 1; round <= RESEND_ROUNDS; round++)); do
        [[ -s "$work/$prefix.todo" ]] || return 0
        "$BENCH" --url "$url" --secret-file "$work/secret.load" --prefix "$prefix" \
            --numbers-file "$work/$prefix.todo" --connections 4 --log "$work/$prefix.resend" \
            >/dev/null 2>&1 || true
        cat "$work/$prefix.resend" >>"$log.resent"
        awk '$2 !~ /^2/ { print $1 }' "$work/$prefix.resend" | sort -n >"$work/$prefix.todo"
        [[ -s "$work/$prefix.todo" ]] && sleep 0.5
    done
    fail "$prefix: $(wc -l <"$work/$prefix.todo") events still not acknowledged after $RESEND_ROUNDS resends"
}
# s_check_acked PREFIX LOG — every 2xx'd event of LOG is stored (once: the
# key is unique per endpoint, and the count says none is there twice).
s_check_acked () {
    local prefix=$1 log=$2
    awk '$2 ~ /^2/ { print $1 }' "$log" | sort -n >"$work/$prefix.acked"
    s_stored "$prefix" >"$work/$prefix.stored"
    comm -23 "$work/$prefix.acked" "$work/$prefix.stored" >"$work/$prefix.lost"
    [[ ! -s "$work/$prefix.lost" ]] ||
        fail "$prefix: $(wc -l <"$work/$prefix.lost") events answered 2xx are not stored: $(head -n 5 "$work/$prefix.lost" | tr '\n' ' ')"
    (($(uniq -d <"$work/$prefix.stored" | wc -l) == 0)) || fail "$prefix: an event is stored twice"
}
# s_check_all PREFIX LOG — after the resends: stored = sent, each once.
s_check_all () {
    local prefix=$1 log=$2
    awk '{ print $1 }' "$log" | sort -n >"$work/$prefix.sent"
    s_stored "$prefix" >"$work/$prefix.stored"
    diff "$work/$prefix.sent" "$work/$prefix.stored" >"$work/$prefix.diff" ||
        fail "$prefix: the stored events are not the events sent, each once (< sent, > stored): $(head -n 5 "$work/$prefix.diff" | tr '\n' ' ')"
}

# ---------------------------------------------------------------------
phase "1. PostgreSQL stopped while webhooks arrive"
s_load pg "$work/pg.log" --connections "$CONNECTIONS" --duration-ms "$LOAD_MAX_MS"
wh_wait "$T_POLL_S" "$BEFORE answers 2xx before PostgreSQL is stopped" s_at_least "$work/pg.log" '^2' "$BEFORE"
before_5xx=$(s_count "$work/pg.log" '^5')
sb_pg_stop "$SB_FARM_DIR/pg"
wh_wait "$T_POLL_S" "$DOWN_5XX 5xx answers while PostgreSQL is down" \
    s_at_least "$work/pg.log" '^5' $((before_5xx + DOWN_5XX))
# Nothing acknowledged while it is down: the answers between the first 5xx
# after the stop and the restart are all 5xx — past the first CONNECTIONS
# of them, as the load reads its connections' answers in epoll's order, not
# quite the order they were sent in (a batch committed before the stop is
# answered before the next one fails).
down_from=$(grep -n ' 5[0-9][0-9]$' "$work/pg.log" | sed -n "$((before_5xx + CONNECTIONS))p" | cut -d: -f1)
down_to=$(wc -l <"$work/pg.log")
sb_pg_restart "$SB_FARM_DIR/pg" || fail "PostgreSQL did not start again"
sed -n "${down_from},${down_to}p" "$work/pg.log" | grep -qv ' 5[0-9][0-9]$' &&
    fail "a webhook was answered other than 5xx while PostgreSQL was down: $(sed -n "${down_from},${down_to}p" "$work/pg.log" | grep -v ' 5[0-9][0-9]$' | head -n 3 | tr '\n' ' ')"
echo "PostgreSQL down: answers $down_from-$down_to all 5xx"
acked=$(s_count "$work/pg.log" '^2')
wh_wait "$T_POLL_S" "$BEFORE answers 2xx once PostgreSQL is back" s_at_least "$work/pg.log" '^2' $((acked + BEFORE))
kill -INT "$load_pid"
wait "$load_pid" || true
cat "$work/pg.log.summary"
(($(s_count "$work/pg.log" '^(0|[134][0-9][0-9])$') == 0)) ||
    fail "an answer was neither 2xx nor 5xx: $(awk '$2 !~ /^[25]/' "$work/pg.log" | head -n 3 | tr '\n' ' ')"
s_check_acked pg "$work/pg.log"
echo "$(wc -l <"$work/pg.acked") acknowledged, $(($(wc -l <"$work/pg.log") - $(wc -l <"$work/pg.acked"))) refused 5xx; all acknowledged stored once"
s_resend pg "$work/pg.log"
s_check_all pg "$work/pg.log"

# ---------------------------------------------------------------------
phase "2. the webhook worker SIGKILLed mid-batch under load"
worker_pid=
for entry in "${SB_FARM_PIDS[@]}"; do
    [[ ${entry%%:*} == webhook-worker ]] && worker_pid=${entry##*:}
done
[[ -n $worker_pid ]] || fail "no webhook-worker in the farm"
s_load kill "$work/kill.log" --connections "$CONNECTIONS" --duration-ms "$LOAD_MAX_MS"
wh_wait "$T_POLL_S" "$BEFORE answers 2xx before the kill" s_at_least "$work/kill.log" '^2' "$BEFORE"
kill -KILL "$worker_pid"
wait "$worker_pid" 2>/dev/null || true
acked=$(s_count "$work/kill.log" '^2')
readies=$(grep -c '"event" *: *"ready"' "$SB_FARM_DIR/logs/webhook-worker.log")
sb_farm_respawn webhook-worker
s_ready () { (($(grep -c '"event" *: *"ready"' "$SB_FARM_DIR/logs/webhook-worker.log") > readies)); }
wh_wait "$T_POLL_S" "the webhook worker is ready again" s_ready
wh_wait "$T_POLL_S" "$BEFORE answers 2xx after the restart" s_at_least "$work/kill.log" '^2' $((acked + BEFORE))
kill -INT "$load_pid"
wait "$load_pid" || true
cat "$work/kill.log.summary"
s_check_acked kill "$work/kill.log"
echo "$(wc -l <"$work/kill.acked") acknowledged, $(($(wc -l <"$work/kill.log") - $(wc -l <"$work/kill.acked"))) not; all acknowledged stored once"
s_resend kill "$work/kill.log"
s_check_all kill "$work/kill.log"

# ---------------------------------------------------------------------
phase "3. an outbound receiver that hangs, resets, answers 500; dead; replayed"
wh_receiver_start faulty
out=$(sb_farm_admin --json webhooks subscribe "$WH_TENANT" \
          "http://127.0.0.1:${WH_RECEIVER_PORT[faulty]}/hooks" --types 'bench.*') ||
    fail "sb-admin webhooks subscribe: $out"
subscription=$(jq -r '.subscription.id // empty' <<<"$out")
sub_secret=$(jq -r '.secret // empty' <<<"$out")
[[ $subscription =~ ^ws_ && $sub_secret =~ ^whsec_ ]] || fail "subscribe: $out"
WH_SECRETS+=("$sub_secret")
wh_receiver_control faulty '{"secret":"'"$sub_secret"'","mode":"hang"}'
"$BENCH" --url "$url" --secret-file "$work/secret.load" --prefix out --count 1 --connections 1 \
    >"$work/out.summary" 2>&1 || fail "the event to deliver was not acknowledged: $(cat "$work/out.summary")"
log=${WH_RECEIVER_LOG[faulty]}
s_attempts () { (($(wc -l <"$log") >= $1)); }
wh_wait "$T_POLL_S" "the first attempt (the receiver hangs)" s_attempts 1
wh_receiver_control faulty '{"mode":"reset"}'
wh_wait "$T_POLL_S" "the second attempt (the receiver resets)" s_attempts 2
wh_receiver_control faulty '{"mode":"500"}'
wh_wait "$T_POLL_S" "the third attempt (the receiver answers 500)" s_attempts 3
s_dead () {
    dead=$(sb_farm_admin --json webhooks dead "$WH_TENANT") &&
    (($(jq '[.deliveries[] | select(.subscription == "'"$subscription"'")] | length' <<<"$dead") == 1))
}
wh_wait "$T_POLL_S" "the delivery is dead after $SCHEDULE" s_dead
delivery=$(jq -r '.deliveries[] | select(.subscription == "'"$subscription"'") | .id' <<<"$dead")
attempts=$(sb_farm_admin --json webhooks attempts "$delivery") || fail "sb-admin webhooks attempts $delivery"
jq -e '(.attempts | length) == 3' <<<"$attempts" >/dev/null || fail "not 3 attempts recorded: $attempts"
jq -e '[.attempts[].status] | sort == [0, 0, 500]' <<<"$attempts" >/dev/null ||
    fail "the attempts' statuses are not 0 (hang), 0 (reset), 500: $attempts"
jq -e '[.attempts[] | select(.status == 0) | .error | length > 0] | all' <<<"$attempts" >/dev/null ||
    fail "an attempt without an answer has no error: $attempts"
jq -e '.attempts[] | select(.status == 500) | .excerpt | contains("receiver down for the test")' \
    <<<"$attempts" >/dev/null || fail "the 500's excerpt is not recorded: $attempts"
(($(wc -l <"$log") == 3)) || fail "the receiver got $(wc -l <"$log") attempts, not 3, before the replay"
wh_receiver_control faulty '{"mode":"ok"}'
sb_farm_admin webhooks replay "$delivery" >/dev/null || fail "sb-admin webhooks replay $delivery"
s_delivered () {
    [[ $(wh_psql "SELECT state FROM webhook_deliveries WHERE id = $delivery") == delivered ]]
}
wh_wait "$T_POLL_S" "the replayed delivery is delivered" s_delivered
(($(jq -s '[.[] | select(.mode == "ok" and .verified)] | length' "$log") == 1)) ||
    fail "the receiver did not verify the replayed delivery once: $(cat "$log")"
(($(jq -s 'map(.id) | unique | length' "$log") == 1)) ||
    fail "the attempts of one delivery did not share one webhook-id: $(cat "$log")"
attempts=$(sb_farm_admin --json webhooks attempts "$delivery") || fail "sb-admin webhooks attempts $delivery"
jq -e '(.attempts | length) == 4 and ([.attempts[].status] | index(200) != null)' <<<"$attempts" >/dev/null ||
    fail "after the replay: not 4 attempts with a 200: $attempts"

wh_no_secret_in_logs
echo "PASS: no acknowledged webhook lost, none stored twice; the failing receiver's delivery dead, replayed, delivered"
