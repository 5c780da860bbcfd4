#!/bin/bash
# tests/30_gateway_tls.sh BUILD_DIR — HTTPS at the gateway, against the real
# sb-gateway and a test CA made here with the openssl CLI: curl gets /healthz
# and /mcp over TLS, HTTP/2 by ALPN, TLS 1.1 and plain HTTP on the TLS port
# refused; a Node client (tests/tls/h2_reload.mjs) speaks HTTP/2 with the
# test CA and checks that SIGHUP swaps the certificate for new handshakes
# while a connection opened before keeps working, and that a bad pair on
# SIGHUP keeps the old one. Start-up refusals: unreadable or mismatched
# files, plain HTTP on a non-loopback address. No broker is needed: these
# routes are answered by the gateway itself.
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
gateway=$build/bin/sb-gateway
token=$build/bin/sb-token
READY_MS=10000          # a gateway's start-up, until its ready line
work=$(mktemp -d "$build/tls-test.XXXXXX")
pids=()

cleanup () {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
fail () { echo "FAIL: $*"; for f in "$work"/*.log; do [[ -f $f ]] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }
ok () { echo "ok: $*"; }

command -v openssl >/dev/null || fail "openssl CLI missing"
command -v curl >/dev/null || fail "curl CLI missing"
command -v node >/dev/null || fail "node missing (tests/interop/README.md)"

# The test CA, two server pairs for 127.0.0.1 and localhost, and a key of neither.
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=switchboard test CA" -keyout ca.key -out ca.crt 2>/dev/null
for n in 1 2; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=localhost" -keyout "server$n.key" -out "server$n.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
    openssl x509 -req -in "server$n.csr" -CA ca.crt -CAkey ca.key -set_serial "$((1000 + n))" \
            -days 2 -extfile ext.cnf -out "server$n.crt" 2>/dev/null
done
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out other.key 2>/dev/null
cp server1.crt live.crt
cp server1.key live.key
openssl rand -hex 32 >token.key
openssl rand -hex 32 >session.key

# s_start NAME ARGS… — starts sb-gateway logging to NAME.log; sets $pid.
s_start () {
    local name=$1
    shift
    "$gateway" --token-key-file token.key --session-key-file session.key --broker tcp://127.0.0.1:1 \
               --connectors "$src/connectors" "$@" 2>"$name.log" &
    pid=$!
    pids+=("$pid")
}

# s_port NAME — waits for NAME's ready line (or its exit); prints the port.
s_port () {
    local name=$1 line deadline=$((SECONDS + READY_MS / 1000))
    while (( SECONDS < deadline )); do
        line=$(grep -m1 'ready' "$name.log" || true)
        if [[ $line =~ port=([0-9]+) ]]; then
            echo "${BASH_REMATCH[1]}"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# s_refused NAME SENTENCE ARGS… — the gateway exits non-zero saying SENTENCE.
s_refused () {
    local name=$1 sentence=$2 rc=0
    shift 2
    s_start "$name" "$@"
    wait "$pid" || rc=$?
    (( rc != 0 )) || fail "$name: the gateway started"
    grep -q -- "$sentence" "$name.log" || fail "$name: no '$sentence' in the log"
    ok "refused at start: $name"
}

s_refused unreadable "cannot read the certificate file" \
          --listen 127.0.0.1:0 --tls-cert-file missing.crt --tls-key-file live.key
s_refused mismatched "is not the key of the certificate" \
          --listen 127.0.0.1:0 --tls-cert-file live.crt --tls-key-file other.key
s_refused not_pem "holds no PEM certificate" \
          --listen 127.0.0.1:0 --tls-cert-file token.key --tls-key-file live.key
s_refused half "go together" --listen 127.0.0.1:0 --tls-cert-file live.crt
s_refused plain_public "plain_http_refused" \
          --listen 0.0.0.0:0 --public-url http://example.test

# Plain HTTP on any address is allowed behind a TLS-terminating load balancer.
s_start behind_lb --listen 0.0.0.0:0 --public-url https://example.test
lb_port=$(s_port behind_lb) || fail "behind_lb: no ready line"
[[ $(curl -sS "http://127.0.0.1:$lb_port/healthz") == '{"status":"ok"}' ]] || fail "behind_lb: /healthz"
kill "$pid"
ok "plain HTTP on 0.0.0.0 with an https --public-url"

# The HTTPS gateway.
public=https://localhost:8443
s_start tls --listen 127.0.0.1:0 --public-url "$public" --tls-cert-file live.crt --tls-key-file live.key
port=$(s_port tls) || fail "tls: no ready line"
tls_pid=$pid
grep -q 'scheme=https' tls.log || fail "ready line does not say https"
url=https://127.0.0.1:$port

body=$(curl -sS --cacert ca.crt "$url/healthz") || fail "curl https /healthz"
[[ $body == '{"status":"ok"}' ]] || fail "/healthz answered '$body'"
[[ $(curl -sS --cacert ca.crt --http2 -o /dev/null -w '%{http_version}' "$url/healthz") == 2 ]] \
    || fail "HTTP/2 not negotiated by ALPN"
[[ $(curl -sS --cacert ca.crt --http1.1 -o /dev/null -w '%{http_version}' "https://localhost:$port/healthz") == 1.1 ]] \
    || fail "HTTP/1.1 over TLS (name localhost)"
ok "HTTPS /healthz, HTTP/2 by ALPN, HTTP/1.1 too"

curl -s -o /dev/null "$url/healthz" && fail "a client without the test CA trusted the certificate"
ok "the certificate is verified against the test CA only"

init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"tls-test","version":"1"}}}'
code=$(curl -sS --cacert ca.crt -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
            -H 'Accept: application/json, text/event-stream' -d "$init" "$url/mcp")
[[ $code == 401 ]] || fail "/mcp without a token answered $code"
bearer=$("$token" --key-file token.key --tenant demo --subject tls-user --scope "mcp:tools mcp:write" \
                  --audience "$public/mcp" --ttl 600)
answer=$(curl -sS --cacert ca.crt --http2 -H "Authorization: Bearer $bearer" -H 'Content-Type: application/json' \
              -H 'Accept: application/json, text/event-stream' -d "$init" "$url/mcp")
[[ $answer == *'"protocolVersion"'* && $answer == *'"serverInfo"'* ]] || fail "initialize over HTTPS answered '$answer'"
ok "/mcp over HTTPS: 401 without a token, initialize with one"

# TLS 1.2 is the floor: a client allowed TLS 1.1 by its own policy
# (SECLEVEL=0) completes a TLS 1.2 handshake with the same options, and gets
# no certificate at all when it offers only TLS 1.1 (the server ends the
# handshake: a protocol_version alert, or with h2o 2.2 just the close).
echo | openssl s_client -connect "127.0.0.1:$port" -tls1_2 -cipher 'DEFAULT@SECLEVEL=0' \
                        -CAfile ca.crt >s_client12.out 2>&1 || fail "a TLS 1.2 client was refused"
grep -q 'Verify return code: 0 (ok)' s_client12.out && grep -q 'serial\|BEGIN CERTIFICATE' s_client12.out \
    || fail "the TLS 1.2 handshake did not verify: $(tail -5 s_client12.out)"
echo | openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
                        -CAfile ca.crt >s_client11.out 2>&1 || true
grep -q 'BEGIN CERTIFICATE' s_client11.out && fail "a TLS 1.1 handshake got the certificate"
grep -qi 'protocol version\|no peer certificate available' s_client11.out \
    || fail "TLS 1.1: unexpected outcome: $(tail -5 s_client11.out)"
ok "TLS 1.2 accepted, TLS 1.1 refused"

if curl -sS --max-time 5 "http://127.0.0.1:$port/healthz" >plain.out 2>&1; then
    fail "plain HTTP on the TLS port answered: $(cat plain.out)"
fi
grep -q '"status"' plain.out && fail "plain HTTP on the TLS port got a body"
ok "plain HTTP on the TLS port fails"

# Reload: Node over HTTP/2 with the test CA (see the script's header).
node "$src/tests/tls/h2_reload.mjs" "$port" ca.crt "$tls_pid" tls.log \
     live.crt live.key server2.crt server2.key other.key 1001 1002 \
    || fail "the Node HTTP/2 client and the reload checks"
kill -0 "$tls_pid" || fail "the gateway died"
# A clean stop with TLS connections behind it (exit 0; under -DSB_SANITIZE
# a leak or an error would make it non-zero and be in the log).
kill -TERM "$tls_pid"
rc=0
wait "$tls_pid" || rc=$?
(( rc == 0 )) || fail "the gateway exited $rc at SIGTERM"
grep -q 'Sanitizer' tls.log && fail "a sanitizer report"
grep -q '"event":"stopped"' tls.log || fail "no stopped line"
ok "stopped cleanly"
echo "PASS"
