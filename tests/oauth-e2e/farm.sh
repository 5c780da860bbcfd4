# shellcheck shell=bash
# tests/oauth-e2e/farm.sh — the HTTPS farm the OAuth end-to-end tests run
# against, and their Node toolchain. Source it (it sources scripts/farm.sh).
#
#   sb_oauth_deps                      `npm ci` here when node_modules is missing or
#                                      stale; checks Node 22 is there
#   sb_oauth_start BUILD_DIR WORK_DIR  a test CA and a server certificate, then the
#                                      whole farm (PostgreSQL, token worker, gateway on
#                                      HTTPS), then tenant acme and user alice@acme.test
#                                      made with sb-admin
#   sb_oauth_stop                      stop it all by PID (fails unless each exits 0)
#
# The gateway serves HTTPS on 127.0.0.1 with a certificate of a CA made here
# (WORK_DIR/tls/ca.crt, valid two days, for IP 127.0.0.1 and localhost);
# its --public-url and the token worker's --issuer are that URL,
# https://127.0.0.1:PORT, and the gateway's --admin-key-file is the operator
# key sb-admin uses. Node trusts the CA through NODE_EXTRA_CA_CERTS (set by
# run.sh); Chromium through its own NSS database (browser.test.mjs).
#
# After sb_oauth_start (exported for the node tests):
#   SB_OAUTH_ISSUER        https://127.0.0.1:PORT (issuer, public URL)
#   SB_OAUTH_MCP_URL       $SB_OAUTH_ISSUER/mcp
#   SB_OAUTH_CA_FILE       the test CA (PEM)
#   SB_OAUTH_TENANT, SB_OAUTH_EMAIL, SB_OAUTH_PASSWORD_FILE   the user to sign in as
#   SB_OAUTH_SETUP_ERROR   empty, or what the farm could not set up (a part of
#                          issue 20 missing: the tests that need it fail with it)
#   SB_OAUTH_ARTIFACTS     where the tests keep artifacts (BUILD_DIR/artifacts)
#   SB_FARM_DIR            logs in $SB_FARM_DIR/logs/<name>.log, PIDs in $SB_FARM_DIR/pids,
#                          the operator key $SB_FARM_DIR/admin.key
#   SB_FARM_BIN            the binaries (sb-admin), SB_PG_BIN PostgreSQL's (psql)
#   SB_FARM_SANDBOX_URL    the sandbox CRM (its /_sandbox/faults slows a call)

# shellcheck source=scripts/farm.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/farm.sh"

SB_OAUTH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SB_OAUTH_NODE=$SB_OAUTH_DIR/node_modules/.bin/node
SB_OAUTH_NODE_MAJOR=22
SB_OAUTH_TENANT=acme
SB_OAUTH_TENANT_NAME="Acme"
SB_OAUTH_EMAIL=alice@acme.test
SB_OAUTH_SETUP_ERROR=

# s_oauth_lock_sum — a digest of what `npm ci` installs from.
s_oauth_lock_sum () {
    cat "$SB_OAUTH_DIR/package.json" "$SB_OAUTH_DIR/package-lock.json" \
        "$SB_OAUTH_DIR/.npmrc" | sha256sum | cut -d' ' -f1
}

# sb_oauth_deps — installs tests/oauth-e2e/node_modules with `npm ci` (the
# npm registry, exactly the committed package-lock.json) unless the tree
# installed was made from the same lock file; then checks Node 22 runs.
# Serialised by a lock, so concurrent tests install once.
sb_oauth_deps () {
    local stamp="$SB_OAUTH_DIR/node_modules/.sb-installed" want have=
    want=$(s_oauth_lock_sum)
    (
        flock -w 600 9 || { sb_say "error: timed out waiting for another npm ci"; exit 1; }
        [[ -s "$stamp" ]] && have=$(<"$stamp")
        if [[ "$have" != "$want" || ! -x "$SB_OAUTH_NODE" ]]; then
            command -v npm >/dev/null || { sb_say "error: npm is not installed (scripts/deps.sh installs it)"; exit 1; }
            sb_say "oauth-e2e: npm ci in ${SB_OAUTH_DIR} (package-lock.json changed or not installed)"
            # .npmrc pins the registry and refuses unapproved install
            # scripts; package.json's allowScripts approves node@22's only.
            (cd "$SB_OAUTH_DIR" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
            echo "$want" >"$stamp"
        fi
    ) 9>"$SB_OAUTH_DIR/.npm-ci.lock" || return 1
    local version
    version=$("$SB_OAUTH_NODE" --version 2>/dev/null) || {
        sb_say "error: $SB_OAUTH_NODE does not run (did node@22's preinstall script run?)"
        return 1
    }
    if [[ $version != "v$SB_OAUTH_NODE_MAJOR."* ]]; then
        sb_say "error: $SB_OAUTH_NODE is $version, not Node $SB_OAUTH_NODE_MAJOR"
        return 1
    fi
}

# s_oauth_tls DIR — the test CA and a server pair for 127.0.0.1/localhost.
s_oauth_tls () {
    local dir=$1
    mkdir -p "$dir"
    (
        cd "$dir" || exit 1
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
                -subj "/CN=switchboard oauth-e2e test CA" -keyout ca.key -out ca.crt 2>/dev/null &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 1001 \
                -days 2 -extfile ext.cnf -out server.crt 2>/dev/null
    ) || { sb_say "error: openssl could not make the test CA in $dir"; return 1; }
    chmod 644 "$dir/ca.crt"
}

# s_oauth_setup_error SENTENCE — records what could not be set up.
s_oauth_setup_error () {
    sb_say "oauth-e2e: NOT SET UP: $1"
    SB_OAUTH_SETUP_ERROR+="${SB_OAUTH_SETUP_ERROR:+; }$1"
}

# s_oauth_admin ARGS… — sb-admin against the farm, trusting the test CA.
s_oauth_admin () {
    "$SB_FARM_BIN/sb-admin" --url "$SB_OAUTH_ISSUER" --admin-key-file "$SB_FARM_DIR/admin.key" \
        --cacert "$SB_OAUTH_CA_FILE" "$@"
}

s_oauth_users () {
    if [[ ! -x "$SB_FARM_BIN/sb-admin" ]]; then
        s_oauth_setup_error "no $SB_FARM_BIN/sb-admin (issue 20 item 5, the admin CLI): cannot create tenant $SB_OAUTH_TENANT and user $SB_OAUTH_EMAIL"
        return 0
    fi
    local log=$SB_FARM_DIR/logs/sb-admin.log
    if ! s_oauth_admin tenant create "$SB_OAUTH_TENANT" "$SB_OAUTH_TENANT_NAME" >>"$log" 2>&1; then
        s_oauth_setup_error "sb-admin tenant create $SB_OAUTH_TENANT failed: $(tail -n 3 "$log" | tr '\n' ' ')"
        return 0
    fi
    if ! s_oauth_admin user add "$SB_OAUTH_TENANT" "$SB_OAUTH_EMAIL" --password-file "$SB_OAUTH_PASSWORD_FILE" \
            >>"$log" 2>&1; then
        s_oauth_setup_error "sb-admin user add $SB_OAUTH_TENANT $SB_OAUTH_EMAIL failed: $(tail -n 3 "$log" | tr '\n' ' ')"
        return 0
    fi
    sb_say "oauth-e2e: tenant $SB_OAUTH_TENANT and user $SB_OAUTH_EMAIL made with sb-admin"
}

sb_oauth_start () {
    local build=$1 work=$2
    mkdir -p "$work"
    SB_OAUTH_WORK=$(cd "$work" && pwd)
    SB_OAUTH_ARTIFACTS=$(cd "$build" && pwd)/artifacts
    mkdir -p "$SB_OAUTH_ARTIFACTS"
    s_oauth_tls "$SB_OAUTH_WORK/tls" || return 1
    SB_OAUTH_CA_FILE=$SB_OAUTH_WORK/tls/ca.crt
    SB_OAUTH_PASSWORD_FILE=$SB_OAUTH_WORK/alice.password
    (umask 077; echo "e2e-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')" >"$SB_OAUTH_PASSWORD_FILE")

    local port
    port=$(sb_free_port) || return 1
    SB_OAUTH_ISSUER="https://127.0.0.1:$port"
    SB_OAUTH_MCP_URL="$SB_OAUTH_ISSUER/mcp"

    # The parts of issue 20 that land in parallel: without them the farm
    # still starts (discovery and the 401 can be checked) and the tests
    # that need them fail saying what is missing.
    # The farm makes the operator key (FARM_DIR/admin.key) and the token
    # service's secret, and gives the token worker --issuer = the public URL.
    SB_FARM_PG=1 SB_FARM_PG_MODE=fresh SB_FARM_FSYNC=off SB_GATEWAY_PORT=$port SB_FARM_PUBLIC_URL=$SB_OAUTH_ISSUER \
    SB_FARM_TLS_CERT_FILE=$SB_OAUTH_WORK/tls/server.crt SB_FARM_TLS_KEY_FILE=$SB_OAUTH_WORK/tls/server.key \
        sb_farm_start "$build" "$SB_OAUTH_WORK/farm" || return 1
    s_oauth_users
    export SB_OAUTH_ISSUER SB_OAUTH_MCP_URL SB_OAUTH_CA_FILE SB_OAUTH_TENANT SB_OAUTH_EMAIL \
           SB_OAUTH_PASSWORD_FILE SB_OAUTH_SETUP_ERROR SB_OAUTH_ARTIFACTS SB_FARM_DIR SB_FARM_SANDBOX_URL \
           SB_FARM_BIN SB_PG_BIN
    sb_say "oauth-e2e: farm ready: $SB_OAUTH_MCP_URL (test CA $SB_OAUTH_CA_FILE)"
}

sb_oauth_stop () {
    sb_farm_stop
}
