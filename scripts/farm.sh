# shellcheck shell=bash
# scripts/farm.sh — start and stop a whole switchboard farm on 127.0.0.1:
# a private PostgreSQL, sb-sandbox, sb-broker, one sb-worker per role and
# one sb-gateway. Used by scripts/up and bench/run. Source it.
#
#   sb_farm_start BUILD_DIR FARM_DIR   start everything, wait until each is ready
#   sb_farm_stop                       stop every process by PID, then PostgreSQL
#   sb_farm_token [TTL]                mint a demo-tenant token (prints it)
#   sb_farm_session TOKEN              `initialize`; prints the Mcp-Session-Id (if any)
#   sb_farm_call TOKEN METHOD PARAMS_JSON [ID]   one JSON-RPC call to /mcp (prints the body)
#   sb_farm_respawn NAME               start process NAME again as it was first started
#   sb_farm_restart NAME [ARG…]        stop NAME and start it again with more options
#   sb_farm_admin ARGS…                sb-admin against the gateway with FARM_DIR/admin.key
#   sb_farm_demo_user [EMAIL]          add a demo-tenant user with a generated password
#                                      (prints "EMAIL PASSWORD"); needs the gateway's
#                                      --admin-key-file FARM_DIR/admin.key
#   sb_farm_signin URL ORG EMAIL PASSWORD   a sign-in on /authorize with curl (302 + code)
#
# After sb_farm_start: SB_FARM_URL (public URL), SB_FARM_MCP_URL, SB_FARM_DIR,
# SB_FARM_BIN, SB_FARM_GATEWAY_URL (the gateway itself), SB_FARM_GATEWAY_URLS
# (every gateway's URL, the first one's first, space-separated),
# SB_FARM_SANDBOX_URL, SB_FARM_SANDBOX_KEY (the sandbox's API key, for
# calling it directly);
# logs are in FARM_DIR/logs/<name>.log, PIDs in FARM_DIR/pids.
# Environment knobs: SB_GATEWAY_PORT (default 8080 when free, else any free
# port; 0 means any free port), SB_LOG_LEVEL (info, or debug),
# SB_FARM_READY_S (seconds each process may take to be ready, default 30),
# SB_FARM_FSYNC (PostgreSQL fsync, default on), SB_FARM_PG_MODE (keep: the
# data survives restarts, the default; fresh: a new cluster each start),
# SB_FARM_PG=0 (no PostgreSQL and no token or task worker), SB_FARM_PUBLIC_URL (the URL clients use when a proxy
# stands in front; default the gateway's), SB_FARM_API_WORKERS (default 1),
# SB_FARM_CONNECTORS (default <source>/connectors; folders separated by ':'),
# SB_FARM_API_WORKER (the api workers' program in BUILD_DIR/bin, default
# sb-worker; the test farms give sb-worker-fixtures), SB_FARM_GATEWAY_ARGS
# (more sb-gateway options, as words), SB_FARM_GATEWAYS (gateways, default
# 1: gateway, then gateway-2…, each on a free port of its own with the same
# --public-url), SB_FARM_BROKER_ARGS (more sb-broker options, as words),
# SB_FARM_TOKEN_ARGS (more options of
# the token worker, as words; it always gets --issuer (the public URL) and
# --secret-key-file FARM_DIR/secret.key),
# SB_FARM_WEBHOOK_ARGS (more options of the webhook worker, as words; with
# PostgreSQL it always gets --db, --migrations and --secret-key-file FARM_DIR/secret.key,
# the token worker's master secret),
# SB_FARM_TOKEN_WORKERS (token workers, default 1: token-worker, then
# token-worker-2…; each gets --connectors and --connector-urls as the api
# workers do, and SB_SANDBOX_OAUTH_CLIENT_ID / _SECRET when set),
# SB_FARM_SANDBOX_CONNECTORS (connectors whose base URL is the farm's
# sandbox, comma-separated, default sandbox-crm), SB_FARM_CONNECTOR_URLS
# (more --connector-urls pairs "name=url,…" for the api and token workers),
# SB_FARM_SANDBOX_ARGS (more sb-sandbox options, as words),
# SB_FARM_TLS_CERT_FILE and SB_FARM_TLS_KEY_FILE (both: the gateway serves
# HTTPS with them and SB_FARM_GATEWAY_URL is https), GLIBC_TUNABLES (default
# SB_FARM_MALLOC_TUNABLES below).

# shellcheck source=scripts/pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg.sh"

SB_SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SB_FARM_PIDS=()         # "name:pid", in start order
declare -gA SB_FARM_SPAWNS=()   # name → its s_farm_spawn arguments, shell-quoted (for sb_farm_respawn)
SB_FARM_DIR=
SB_FARM_BIN=
SB_FARM_URL=
SB_FARM_GATEWAY_URLS=
SB_FARM_MCP_URL=
SB_FARM_PROTOCOL=2025-06-18
# glibc malloc for jansson's many small blocks: no fastbins (whose
# consolidation every large allocation paid for) and 256 cached blocks per
# size instead of 7. The api worker spends about a fifth less CPU per tool
# call with it (README, Benchmark). And no heap trimming below 16 MiB of
# free top: each free of a message buffer gave memory back (madvise) that
# the next message took again, a tenth of the broker's CPU.
# docker/Dockerfile sets the same value.
SB_FARM_MALLOC_TUNABLES=glibc.malloc.mxfast=0:glibc.malloc.tcache_count=256:glibc.malloc.trim_threshold=16777216

# s_farm_spawn NAME ENV_ASSIGNMENTS… -- ARGV… — starts one process in the
# background with its stdout+stderr in logs/NAME.log, records its PID.
s_farm_spawn () {
    local name=$1; shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    local log="$SB_FARM_DIR/logs/$name.log"
    SB_FARM_SPAWNS[$name]=$(printf '%q ' "$name" "${envs[@]}" -- "$@")
    # A restart appends to the log of the process it replaces.
    [[ ${s_farm_respawning:-0} == 1 ]] || : >"$log"
    # setsid: a Ctrl-C in the terminal reaches `up` only; up stops the rest
    # in order, by PID.
    env GLIBC_TUNABLES="${GLIBC_TUNABLES:-$SB_FARM_MALLOC_TUNABLES}" "${envs[@]}" \
        setsid "$@" </dev/null >>"$log" 2>&1 &
    local pid=$!
    SB_FARM_PIDS+=("$name:$pid")
    echo "$name $pid" >>"$SB_FARM_DIR/pids"
    sb_say "  started $name (pid $pid, log ${log#"$PWD"/})"
}

# s_farm_wait_ready NAME — waits for the `"event":"ready"` log line of NAME.
s_farm_wait_ready () {
    local name=$1 entry pid=
    for entry in "${SB_FARM_PIDS[@]}"; do
        [[ ${entry%%:*} == "$name" ]] && pid=${entry##*:}
    done
    if ! sb_wait_log "$SB_FARM_DIR/logs/$name.log" '"event" *: *"ready"' \
             "${SB_FARM_READY_S:-30}" "$pid"; then
        sb_say "error: $name did not become ready; last lines of its log:"
        tail -n 20 "$SB_FARM_DIR/logs/$name.log" >&2 || true
        return 1
    fi
}

# s_farm_gateway_port — SB_GATEWAY_PORT, else 8080 when free, else any free port.
s_farm_gateway_port () {
    local port=${SB_GATEWAY_PORT:-}
    if [[ -n "$port" && "$port" != 0 ]]; then
        if sb_port_busy "$port"; then
            sb_say "error: SB_GATEWAY_PORT=$port is already in use"
            return 1
        fi
        echo "$port"
    elif [[ -z "$port" ]] && ! sb_port_busy 8080; then
        echo 8080
    else
        sb_free_port
    fi
}

# s_farm_token_key FILE — 32 random bytes as 64 hex characters, made once
# (the token key, and the session key: each a secret of its own).
s_farm_token_key () {
    local file=$1
    if [[ ! -s "$file" ]]; then
        (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file")
        echo >>"$file"
    fi
    chmod 600 "$file"
}

# s_farm_stop_stale — stops processes a previous farm in this folder left
# behind (its runner was SIGKILLed), recognised by PID and binary path.
s_farm_stop_stale () {
    local name pid
    [[ -s "$SB_FARM_DIR/pids" ]] || return 0
    while read -r name pid; do
        if [[ -n "$pid" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$SB_FARM_BIN/"; then
            sb_say "  stopping $name (pid $pid) left by an earlier run"
            sb_stop_pid "$pid" 10 || true   # not our child: status unknown
        fi
    done <"$SB_FARM_DIR/pids"
}

sb_farm_start () {
    local build=$1 farm=$2
    SB_FARM_BIN=$(cd "$build" && pwd)/bin
    mkdir -p "$farm/logs"
    SB_FARM_DIR=$(cd "$farm" && pwd)
    s_farm_stop_stale
    : >"$SB_FARM_DIR/pids"
    SB_FARM_PIDS=()

    local b
    for b in sb-sandbox sb-broker sb-worker sb-gateway sb-token; do
        [[ -x "$SB_FARM_BIN/$b" ]] || { sb_say "error: $SB_FARM_BIN/$b is not built"; return 1; }
    done

    local with_pg=${SB_FARM_PG:-1} conninfo=
    if [[ $with_pg == 1 ]]; then
        sb_say "starting PostgreSQL in ${SB_FARM_DIR}/pg"
        sb_pg_start "$SB_FARM_DIR/pg" "${SB_FARM_PG_MODE:-keep}" "${SB_FARM_FSYNC:-on}" || return 1
        conninfo=$(sb_pg_conninfo "$SB_FARM_DIR/pg")
    fi
    s_farm_token_key "$SB_FARM_DIR/token.key"
    s_farm_token_key "$SB_FARM_DIR/session.key"
    s_farm_token_key "$SB_FARM_DIR/secret.key"     # the token and webhook workers': seals signing keys, connection keys, CSRF
    s_farm_token_key "$SB_FARM_DIR/admin.key"      # the operator's credential for /admin/ (sb-admin)

    local sandbox_port frontend_port backend_port gateway_port
    sandbox_port=$(sb_free_port) || return 1
    frontend_port=$(sb_free_port) || return 1
    backend_port=$(sb_free_port) || return 1
    gateway_port=$(s_farm_gateway_port) || return 1
    SB_FARM_SANDBOX_KEY=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
    local gateway_tls=()
    if [[ -n "${SB_FARM_TLS_CERT_FILE:-}${SB_FARM_TLS_KEY_FILE:-}" ]]; then
        gateway_tls=(--tls-cert-file "${SB_FARM_TLS_CERT_FILE:-}" --tls-key-file "${SB_FARM_TLS_KEY_FILE:-}")
        SB_FARM_GATEWAY_URL="https://127.0.0.1:$gateway_port"
    else
        SB_FARM_GATEWAY_URL="http://127.0.0.1:$gateway_port"
    fi
    SB_FARM_SANDBOX_URL="http://127.0.0.1:$sandbox_port"
    SB_FARM_URL=${SB_FARM_PUBLIC_URL:-$SB_FARM_GATEWAY_URL}
    SB_FARM_MCP_URL="$SB_FARM_URL/mcp"
    local level=${SB_LOG_LEVEL:-info}
    # Readiness is the `ready` log line, written at info: never go quieter.
    [[ $level == debug ]] || level=info
    local connectors=${SB_FARM_CONNECTORS:-$SB_SOURCE_DIR/connectors}
    local gateway_args=()
    read -r -a gateway_args <<<"${SB_FARM_GATEWAY_ARGS:-}"
    local token_args=()
    read -r -a token_args <<<"${SB_FARM_TOKEN_ARGS:-}"
    local sandbox_args=()
    read -r -a sandbox_args <<<"${SB_FARM_SANDBOX_ARGS:-}"
    local broker_args=()
    read -r -a broker_args <<<"${SB_FARM_BROKER_ARGS:-}"
    local gateways=${SB_FARM_GATEWAYS:-1}
    [[ $gateways =~ ^[1-9]$ ]] || { sb_say "error: SB_FARM_GATEWAYS is 1-9"; return 1; }
    local backend="tcp://127.0.0.1:$backend_port"
    # The base URLs the api and token workers give the connectors: the
    # farm's sandbox for the sandbox's connectors, then any others.
    local connector_urls= name
    local sandbox_connectors=()
    IFS=, read -r -a sandbox_connectors <<<"${SB_FARM_SANDBOX_CONNECTORS:-sandbox-crm}"
    for name in "${sandbox_connectors[@]}"; do
        connector_urls+="${connector_urls:+,}$name=$SB_FARM_SANDBOX_URL"
    done
    [[ -n "${SB_FARM_CONNECTOR_URLS:-}" ]] && connector_urls+="${connector_urls:+,}$SB_FARM_CONNECTOR_URLS"
    # The OAuth client the token workers present to the sandbox's provider
    # (tests/fixtures/connectors/sandbox-oauth.json), when the caller has one.
    local token_envs=()
    [[ -n "${SB_SANDBOX_OAUTH_CLIENT_ID:-}" ]] &&
        token_envs+=(SB_SANDBOX_OAUTH_CLIENT_ID="$SB_SANDBOX_OAUTH_CLIENT_ID")
    [[ -n "${SB_SANDBOX_OAUTH_CLIENT_SECRET:-}" ]] &&
        token_envs+=(SB_SANDBOX_OAUTH_CLIENT_SECRET="$SB_SANDBOX_OAUTH_CLIENT_SECRET")

    sb_say "starting the farm (logs in $SB_FARM_DIR/logs)"
    s_farm_spawn sandbox SB_SANDBOX_API_KEY="$SB_FARM_SANDBOX_KEY" -- \
        "$SB_FARM_BIN/sb-sandbox" --listen "127.0.0.1:$sandbox_port" --log-level "$level" \
        "${sandbox_args[@]}"
    s_farm_spawn broker -- \
        "$SB_FARM_BIN/sb-broker" --frontend "tcp://127.0.0.1:$frontend_port" \
        --backend "$backend" --log-level "$level" "${broker_args[@]}"
    s_farm_wait_ready sandbox || return 1
    s_farm_wait_ready broker || return 1

    # The token and task workers apply the migrations (one at a time, under
    # an advisory lock); the others start beside them.
    local names=() i
    if [[ $with_pg == 1 ]]; then
        for ((i = 1; i <= ${SB_FARM_TOKEN_WORKERS:-1}; i++)); do
            name=token-worker
            ((i > 1)) && name=token-worker-$i
            s_farm_spawn "$name" "${token_envs[@]}" -- \
                "$SB_FARM_BIN/sb-worker" --role token --broker "$backend" --db "$conninfo" \
                --migrations "$SB_SOURCE_DIR/db/migrations" --connectors "$connectors" \
                --connector-urls "$connector_urls" \
                --issuer "$SB_FARM_URL" --secret-key-file "$SB_FARM_DIR/secret.key" \
                --log-level "$level" "${token_args[@]}"
            names+=("$name")
        done
        s_farm_spawn task-worker -- \
            "$SB_FARM_BIN/sb-worker" --role task --broker "$backend" --db "$conninfo" \
            --migrations "$SB_SOURCE_DIR/db/migrations" --log-level "$level"
        names+=(task-worker)
    fi
    for ((i = 1; i <= ${SB_FARM_API_WORKERS:-1}; i++)); do
        s_farm_spawn "api-worker-$i" SB_SANDBOX_CRM_TOKEN="$SB_FARM_SANDBOX_KEY" -- \
            "$SB_FARM_BIN/${SB_FARM_API_WORKER:-sb-worker}" --role api --broker "$backend" --connectors "$connectors" \
            --connector-urls "$connector_urls" --log-level "$level"
        names+=("api-worker-$i")
    done
    # The webhook worker (docs/WEBHOOKS.md) keeps the events in PostgreSQL
    # and opens the endpoints' secrets with the token worker's master
    # secret; without PostgreSQL it answers ping only.
    local webhook_args=()
    read -r -a webhook_args <<<"${SB_FARM_WEBHOOK_ARGS:-}"
    local webhook_db=()
    [[ $with_pg == 1 ]] &&
        webhook_db=(--db "$conninfo" --migrations "$SB_SOURCE_DIR/db/migrations"
                    --secret-key-file "$SB_FARM_DIR/secret.key")
    s_farm_spawn webhook-worker -- \
        "$SB_FARM_BIN/sb-worker" --role webhook --broker "$backend" --connectors "$connectors" \
        "${webhook_db[@]}" --log-level "$level" "${webhook_args[@]}"
    names+=(webhook-worker)
    # The first gateway is SB_FARM_GATEWAY_URL; the others (gateway-2…)
    # listen on free ports of their own, same keys and public URL.
    local ports=("$gateway_port") scheme=${SB_FARM_GATEWAY_URL%%://*}
    for ((i = 2; i <= gateways; i++)); do
        ports+=("$(sb_free_port)") || return 1
    done
    SB_FARM_GATEWAY_URLS=
    for ((i = 1; i <= gateways; i++)); do
        name=gateway
        ((i > 1)) && name=gateway-$i
        s_farm_spawn "$name" -- \
            "$SB_FARM_BIN/sb-gateway" --listen "127.0.0.1:${ports[i - 1]}" \
            --broker "tcp://127.0.0.1:$frontend_port" --token-key-file "$SB_FARM_DIR/token.key" \
            --session-key-file "$SB_FARM_DIR/session.key" --admin-key-file "$SB_FARM_DIR/admin.key" \
            --connectors "$connectors" --public-url "$SB_FARM_URL" --log-level "$level" \
            "${gateway_tls[@]}" "${gateway_args[@]}"
        names+=("$name")
        SB_FARM_GATEWAY_URLS+="${SB_FARM_GATEWAY_URLS:+ }$scheme://127.0.0.1:${ports[i - 1]}"
    done
    for name in "${names[@]}"; do
        s_farm_wait_ready "$name" || return 1
    done
    for ((i = 1; i <= gateways; i++)); do
        sb_wait_port "${ports[i - 1]}" 10 ||
            { sb_say "error: a gateway is not listening on ${ports[i - 1]}"; return 1; }
    done
    sb_say "farm ready: $SB_FARM_MCP_URL"
}

# sb_farm_stop — stops the processes in reverse start order (SIGTERM, then
# SIGKILL after 10 s), then PostgreSQL. Safe to call twice. Fails when a
# process did not exit with status 0 (a crash, a sanitizer report, a hang);
# SB_FARM_BAD_EXITS then names them.
SB_FARM_BAD_EXITS=
sb_farm_stop () {
    local i entry rc
    for ((i = ${#SB_FARM_PIDS[@]} - 1; i >= 0; i--)); do
        entry=${SB_FARM_PIDS[$i]}
        rc=0
        sb_stop_pid "${entry##*:}" 10 || rc=$?
        if ((rc != 0)); then
            SB_FARM_BAD_EXITS+="${SB_FARM_BAD_EXITS:+, }${entry%%:*} (status $rc)"
        fi
    done
    SB_FARM_PIDS=()
    if [[ -n "$SB_FARM_DIR" ]]; then
        : >"$SB_FARM_DIR/pids"
        sb_pg_stop "$SB_FARM_DIR/pg"
    fi
    if [[ -n "$SB_FARM_BAD_EXITS" ]]; then
        sb_say "exited badly: $SB_FARM_BAD_EXITS (see $SB_FARM_DIR/logs)"
        return 1
    fi
}

# sb_farm_alive — true while every farm process runs; names the dead on stderr.
sb_farm_alive () {
    local entry ok=0
    for entry in "${SB_FARM_PIDS[@]}"; do
        if ! kill -0 "${entry##*:}" 2>/dev/null; then
            sb_say "${entry%%:*} (pid ${entry##*:}) exited; see $SB_FARM_DIR/logs/${entry%%:*}.log"
            ok=1
        fi
    done
    return $ok
}

# sb_farm_respawn NAME — starts NAME (a name in SB_FARM_PIDS, whose process
# has exited) again with the same command line and environment, appending
# to its log; its entry in SB_FARM_PIDS (same place: the stop order holds)
# and FARM_DIR/pids get the new PID, also left in SB_FARM_RESPAWNED_PID.
# Call it in this shell (not in $(…)): the process must be its child.
SB_FARM_RESPAWNED_PID=
sb_farm_respawn () {
    local name=$1 i index=-1 entry
    [[ -n "${SB_FARM_SPAWNS[$name]:-}" ]] || { sb_say "error: no process named $name"; return 1; }
    for ((i = 0; i < ${#SB_FARM_PIDS[@]}; i++)); do
        [[ ${SB_FARM_PIDS[$i]%%:*} == "$name" ]] && index=$i
    done
    ((index >= 0)) || { sb_say "error: $name is not in the farm"; return 1; }
    local s_farm_respawning=1 args
    eval "args=(${SB_FARM_SPAWNS[$name]})"
    s_farm_spawn "${args[@]}"
    # s_farm_spawn appended the new entry: move it to the old one's place.
    SB_FARM_PIDS[index]=${SB_FARM_PIDS[-1]}
    unset 'SB_FARM_PIDS[-1]'
    : >"$SB_FARM_DIR/pids"
    for entry in "${SB_FARM_PIDS[@]}"; do
        echo "${entry%%:*} ${entry##*:}" >>"$SB_FARM_DIR/pids"
    done
    # shellcheck disable=SC2034  # read by scripts/up
    SB_FARM_RESPAWNED_PID=${SB_FARM_PIDS[index]##*:}
}

# sb_farm_restart NAME [ARG…] — stops NAME (SIGTERM by PID, as
# sb_farm_stop does) and starts it again with the command line it was first
# started with plus ARGs (each restart from the first one's: ARGs never
# pile up), appending to its log; waits for its new `ready` line. The new
# PID is in SB_FARM_RESPAWNED_PID. bench/webhooks switches the webhook
# worker's --webhook-batch-max this way. Call it in this shell.
declare -gA SB_FARM_FIRST_SPAWNS=()
sb_farm_restart () {
    local name=$1 entry pid='' readies
    shift
    [[ -n "${SB_FARM_SPAWNS[$name]:-}" ]] || { sb_say "error: no process named $name"; return 1; }
    [[ -n "${SB_FARM_FIRST_SPAWNS[$name]:-}" ]] || SB_FARM_FIRST_SPAWNS[$name]=${SB_FARM_SPAWNS[$name]}
    for entry in "${SB_FARM_PIDS[@]}"; do
        [[ ${entry%%:*} == "$name" ]] && pid=${entry##*:}
    done
    [[ -n $pid ]] && { sb_stop_pid "$pid" 10 || sb_say "$name (pid $pid) exited with status $?"; }
    readies=$(grep -c '"event" *: *"ready"' "$SB_FARM_DIR/logs/$name.log" || true)
    local extra=
    (($#)) && extra=$(printf '%q ' "$@")
    SB_FARM_SPAWNS[$name]="${SB_FARM_FIRST_SPAWNS[$name]} $extra"
    sb_farm_respawn "$name" || return 1
    local deadline=$((SECONDS + ${SB_FARM_READY_S:-30}))
    while (($(grep -c '"event" *: *"ready"' "$SB_FARM_DIR/logs/$name.log" || true) <= readies)); do
        if ! kill -0 "$SB_FARM_RESPAWNED_PID" 2>/dev/null || ((SECONDS >= deadline)); then
            sb_say "error: $name did not become ready again; last lines of its log:"
            tail -n 20 "$SB_FARM_DIR/logs/$name.log" >&2 || true
            return 1
        fi
        sleep 0.05
    done
}

# sb_farm_token [TTL] — a token for tenant demo, audience <public-url>/mcp.
sb_farm_token () {
    "$SB_FARM_BIN/sb-token" --key-file "$SB_FARM_DIR/token.key" --tenant demo \
        --subject demo-user --scope "mcp:tools mcp:write" --audience "$SB_FARM_MCP_URL" --ttl "${1:-86400}"
}

# sb_farm_session TOKEN — sends `initialize`; prints the Mcp-Session-Id the
# gateway answered with (nothing when it uses none). Fails on a transport error.
sb_farm_session () {
    local token=$1 headers
    headers=$(mktemp)
    if ! curl -sS -m 30 -D "$headers" -o /dev/null -X POST "$SB_FARM_MCP_URL" \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            -H 'Accept: application/json, text/event-stream' \
            -H "MCP-Protocol-Version: $SB_FARM_PROTOCOL" \
            -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"'"$SB_FARM_PROTOCOL"'","capabilities":{},"clientInfo":{"name":"switchboard-scripts","version":"1"}}}'; then
        rm -f "$headers"
        return 1
    fi
    tr -d '\r' <"$headers" | sed -n 's/^[Mm][Cc][Pp]-[Ss]ession-[Ii][Dd]: *//p' | head -n 1
    rm -f "$headers"
}

# sb_farm_call TOKEN METHOD PARAMS_JSON [ID] — one JSON-RPC request to /mcp,
# after an `initialize` whose Mcp-Session-Id (if any) it then sends. Prints
# the response body; fails on a transport error or a non-2xx status.
sb_farm_call () {
    local token=$1 method=$2 params=$3 id=${4:-2}
    local session body status
    session=$(sb_farm_session "$token") || return 1
    local extra=()
    [[ -n "$session" ]] && extra=(-H "Mcp-Session-Id: $session")
    body=$(curl -sS -m 60 -w '\n%{http_code}' -X POST "$SB_FARM_MCP_URL" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' \
        -H "MCP-Protocol-Version: $SB_FARM_PROTOCOL" "${extra[@]}" \
        -d '{"jsonrpc":"2.0","id":'"$id"',"method":"'"$method"'","params":'"$params"'}') || return 1
    status=${body##*$'\n'}
    body=${body%$'\n'*}
    printf '%s\n' "$body"
    [[ $status == 2?? ]]
}

# sb_farm_admin ARGS… — sb-admin (docs/ADMIN.md) against the farm's gateway,
# with the operator key FARM_DIR/admin.key. Its exit code is sb-admin's.
sb_farm_admin () {
    "$SB_FARM_BIN/sb-admin" --url "$SB_FARM_GATEWAY_URL" \
        --admin-key-file "$SB_FARM_DIR/admin.key" "$@"
}

# sb_farm_demo_user [EMAIL] — adds EMAIL (default demo@example.com) to the
# demo tenant with a generated password and prints "EMAIL PASSWORD": what
# a person types into the sign-in page. Fails (sb-admin's sentence on
# stderr) when the user exists or the gateway refuses.
sb_farm_demo_user () {
    local email=${1:-demo@example.com} out password
    out=$(sb_farm_admin user add demo "$email") || return
    password=$(printf '%s\n' "$out" | sed -n 's/^password: //p')
    if [[ -z $password ]]; then
        echo "sb_farm_demo_user: sb-admin printed no password" >&2
        return 1
    fi
    printf '%s %s\n' "$email" "$password"
}

# sb_farm_signin URL ORGANISATION EMAIL PASSWORD — signs a user in at the
# gateway URL as a browser would, with curl: a client registered (RFC
# 7591), GET /authorize (its CSRF cookie and hidden fields), POST the form
# with organisation, email and password. True on a 302 to the client with
# a code and the state; else says what came back.
sb_farm_signin () {
    local url=$1 org=$2 email=$3 password=$4
    local redirect=http://127.0.0.1:9/callback jar page location client_id csrf challenge state
    client_id=$(curl -sS -m 30 -X POST "$url/register" -H 'Content-Type: application/json' \
        -d '{"client_name":"sb_farm_signin","redirect_uris":["'"$redirect"'"],"token_endpoint_auth_method":"none"}' |
        jq -r '.client_id // empty') || return 1
    [[ -n $client_id ]] || { sb_say "error: POST /register gave no client_id"; return 1; }
    # An S256 challenge is 43 base64url characters; no token is asked for.
    challenge=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
    state=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
    jar=$(mktemp)
    local params=(--data-urlencode response_type=code --data-urlencode "client_id=$client_id"
                  --data-urlencode "redirect_uri=$redirect" --data-urlencode "code_challenge=$challenge"
                  --data-urlencode code_challenge_method=S256 --data-urlencode "state=$state")
    page=$(curl -sS -m 30 -G -c "$jar" "$url/authorize" "${params[@]}") || { rm -f "$jar"; return 1; }
    # Every hidden field back as the page has it (csrf too); the values
    # here hold no character the page escapes.
    local fields=() line
    while IFS= read -r line; do
        fields+=(--data-urlencode "$line")
    done < <(sed -n 's/.*<input type="hidden" name="\([a-z_]*\)" value="\([^"&]*\)".*/\1=\2/p' <<<"$page")
    csrf=$(printf '%s\n' "${fields[@]}" | sed -n 's/^csrf=//p')
    [[ -n $csrf ]] || { rm -f "$jar"; sb_say "error: GET /authorize gave no sign-in form: ${page:0:300}"; return 1; }
    location=$(curl -sS -m 30 -b "$jar" -o /dev/null -w '%{http_code} %{redirect_url}' \
        -H "Origin: $url" "$url/authorize" "${fields[@]}" \
        --data-urlencode "organisation=$org" --data-urlencode "email=$email" \
        --data-urlencode "password=$password" --data-urlencode decision=allow)
    rm -f "$jar"
    [[ $location == "302 $redirect?"*"code="* && $location == *"state=$state"* ]] ||
        { sb_say "error: the sign-in of $email answered: $location"; return 1; }
}
