#!/bin/bash
# tests/47_e2e_connections.sh BUILD_DIR WORK_DIR — issue 21 end to end
# through a whole farm (scripts/farm.sh at debug level, PostgreSQL, two
# token workers, two api workers, the sandbox's OAuth provider): every
# tenant its own SaaS connections, refreshed exactly once, never logged.
#
#   1. Tenants acme and globex (sb-admin) and a user token each (sb-token).
#      acme's oauth_whoami answers isError with a connect link; the test
#      follows it as a browser would (curl with a cookie jar: the
#      confirmation page, its POST, the sandbox's /oauth/authorize, its
#      POST as alice, the callback) to the "Connected" page; globex the
#      same as bob. Then acme's oauth_whoami says alice and globex's says
#      bob, no tool shows acme bob's, and `sb-admin connections list`
#      shows each tenant its own.
#   2. Faults, each with an asserted outcome. A grant's access tokens are
#      made to expire at the sandbox (POST /_sandbox/oauth/expire): the
#      upstream answers 401 and the api worker asks the token service to
#      refresh (PROTOCOL.md "Connections", `stale`).
#      a. 200 concurrent calls on one expired grant, two api workers and
#         two token workers: every call succeeds, the sandbox counts one
#         refresh and never two at once, the version moves by one.
#      b. the token worker refreshing (the only one running) SIGKILLed
#         while the provider holds its answer (`slow`; it rotates the
#         refresh token anyway): the row keeps its refresh token, which
#         the sandbox still takes (--oauth-refresh-grace-s), and the next
#         call, once the dead worker's lease ended, succeeds.
#      c. PostgreSQL stopped: the call answers isError with a sentence;
#         started again: calls succeed.
#      d. the provider down (`down`, 503): isError with a sentence, the
#         connection still connected; the fault cleared: success.
#      e. `invalid_grant`: the connection is broken, the call answers the
#         reconnect sentence and link, audit `connection_broken`; the
#         flow followed again fixes it.
#      f. API keys added with `sb-admin connections add-key` on
#         sandbox-keyed (a second sandbox wanting X-API-Key): acme's key
#         works, initech's own (wrong) key is what its call sends, globex
#         without one is told to ask its administrator (no link).
#      g. `sb-admin connection-keys rotate` while calls and new
#         connections run: all succeed, every row ends under the new key,
#         a refresh after it is sealed under it.
#   3. No secret in any log: every farm log is searched for every secret
#      the test saw (the client secret, the API keys, every access and
#      refresh token the sandbox's grants held at each step — its test
#      control GET /_sandbox/oauth/grants/<id>/tokens —, connect tickets,
#      states, codes, cookies) and for anything shaped like a sandbox
#      token or code.
#
# Every wait is a bounded poll on an answer or an event.
# shellcheck disable=SC2015  # `A && B || fail …`: fail when either fails
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/farm.sh
source "$root/scripts/farm.sh"
build=$(cd "${1:?usage: $0 BUILD_DIR WORK_DIR}" && pwd)
work=${2:?usage: $0 BUILD_DIR WORK_DIR}

CONCURRENT_CALLS=200    # fault a: calls at once on one expired connection
ACCESS_TTL_S=3600       # the sandbox's access tokens (expired on purpose: /_sandbox/oauth/expire)
SLOW_MS=4000            # fault b: the provider's refresh answer waits this long
REFRESH_GRACE_S=120     # the sandbox keeps a rotated-away refresh token usable this long
LEASE_S=15              # SB_CONN_LEASE_S: a dead worker's lease ends after this
T_CALL_S=40             # one tool call, at most (the gateway's deadline is 30 s)
T_POLL_S=40             # any condition polled for
ROTATE_ROUNDS=4         # fault g: rounds of calls and new connections around the rotation

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
secrets=$work/secrets      # every secret seen, one a line
: >"$secrets"
started=$SECONDS
phase_started=$SECONDS

fail () { echo "FAIL: $*" >&2; exit 1; }
phase () {
    echo "--- $* (previous step $((SECONDS - phase_started)) s)"
    phase_started=$SECONDS
}
secret () { [[ -n "$1" ]] && printf '%s\n' "$1" >>"$secrets"; return 0; }
rand () { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# The sandbox's OAuth client, as the token workers present it; the
# sandbox reads the same two variables (never a secret on a command line).
SB_SANDBOX_OAUTH_CLIENT_ID=switchboard-e2e
SB_SANDBOX_OAUTH_CLIENT_SECRET=cs-$(rand 24)
export SB_SANDBOX_OAUTH_CLIENT_ID SB_SANDBOX_OAUTH_CLIENT_SECRET
secret "$SB_SANDBOX_OAUTH_CLIENT_SECRET"
# The second sandbox (fault f) and acme's key for it.
keyed_port=$(sb_free_port)
keyed_key=ak-$(rand 20)
secret "$keyed_key"

keyed_pid=
s_cleanup () {
    local rc=$?
    if [[ -n $keyed_pid ]] && ! sb_stop_pid "$keyed_pid" 10; then
        echo "the keyed sandbox did not exit 0" >&2
        rc=1
    fi
    sb_farm_stop || rc=1
    echo "total $((SECONDS - started)) s"
    exit $rc
}
trap s_cleanup EXIT

phase "starting the farm"
SB_LOG_LEVEL=debug SB_FARM_PG_MODE=fresh SB_FARM_FSYNC=off SB_GATEWAY_PORT=0 \
SB_FARM_CONNECTORS="$root/connectors:$root/tests/fixtures/connectors:$root/tests/fixtures/connectors/keyed" \
SB_FARM_API_WORKER=sb-worker-fixtures SB_FARM_API_WORKERS=2 SB_FARM_TOKEN_WORKERS=2 \
SB_FARM_SANDBOX_CONNECTORS=sandbox-crm,sandbox-oauth \
SB_FARM_CONNECTOR_URLS="sandbox-keyed=http://127.0.0.1:$keyed_port" \
SB_FARM_SANDBOX_ARGS="--oauth-client-id $SB_SANDBOX_OAUTH_CLIENT_ID --oauth-access-ttl-s $ACCESS_TTL_S --oauth-refresh-grace-s $REFRESH_GRACE_S" \
SB_FARM_GATEWAY_ARGS="--call-timeout-ms 30000" \
    sb_farm_start "$build" "$work/farm" >"$work/farm.out" 2>&1 ||
    { cat "$work/farm.out"; fail "the farm did not start"; }
env -u SB_SANDBOX_OAUTH_CLIENT_ID -u SB_SANDBOX_OAUTH_CLIENT_SECRET SB_SANDBOX_API_KEY="$keyed_key" setsid "$SB_FARM_BIN/sb-sandbox" --listen "127.0.0.1:$keyed_port" \
    --api-key-header X-API-Key --log-level debug </dev/null >"$SB_FARM_DIR/logs/sandbox-keyed.log" 2>&1 &
keyed_pid=$!
sb_wait_log "$SB_FARM_DIR/logs/sandbox-keyed.log" '"event" *: *"ready"' 30 "$keyed_pid" ||
    fail "the keyed sandbox did not start"
S=$SB_FARM_SANDBOX_URL

# ---------------------------------------------------------------------
# Helpers

# s_psql SQL — one statement as the superuser on the farm's database.
s_psql () {
    "$SB_PG_BIN/psql" -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(<"$SB_FARM_DIR/pg/port")" \
        -U postgres -d switchboard -c "$1"
}

# s_admin ARGS… — sb-admin against the farm (its output on stdout).
s_admin () { sb_farm_admin "$@"; }

# s_mint TENANT SUBJECT — a user token for TENANT.
s_mint () {
    "$SB_FARM_BIN/sb-token" --key-file "$SB_FARM_DIR/token.key" --tenant "$1" --subject "$2" \
        --scope "mcp:tools mcp:write" --audience "$SB_FARM_MCP_URL" --ttl 3600
}

# s_json TEXT — the JSON-RPC message of a response body (plain JSON, or
# the data line of an SSE stream).
s_json () {
    if [[ $1 == "{"* ]]; then
        printf '%s\n' "$1"
    else
        sed -n 's/^data: *//p' <<<"$1" | grep -E '^\{.*"(result|error)"' | tail -n 1
    fi
}

# s_call TOKEN TOOL ARGS_JSON — one tools/call; prints the JSON-RPC message.
s_call () {
    local out
    out=$(sb_farm_call "$1" tools/call "{\"name\":\"$2\",\"arguments\":$3}") || {
        echo "transport error or non-2xx: $out" >&2
        return 1
    }
    s_json "$out"
}

# s_text MESSAGE — the text of a tools/call result (every text content).
s_text () { jq -r '[.result.content[]? | select(.type == "text") | .text] | join("\n")' <<<"$1"; }

# s_is_error MESSAGE — true when the call's result is isError.
s_is_error () { [[ $(jq -r '.result.isError // false' <<<"$1") == true ]]; }

# s_ok MESSAGE — true for a result that is not isError.
s_ok () { [[ $(jq -r 'has("result") and (.result.isError // false) == false' <<<"$1") == true ]]; }

# s_whoami TOKEN — the account oauth_whoami says the call ran as (fails
# with the answer on stderr when the call failed).
s_whoami () {
    local msg
    msg=$(s_call "$1" oauth_whoami '{}') || return 1
    if ! s_ok "$msg"; then
        echo "oauth_whoami: $msg" >&2
        return 1
    fi
    jq -r '(.result.structuredContent // {}) as $s
           | ($s.account // $s.name // $s.id // empty)' <<<"$msg" |
        head -n 1 | grep . || s_text "$msg"
}

# s_link TEXT — the connect link in a sentence.
s_link () {
    grep -oE 'https?://[^ "<>)]+/connect/sandbox-oauth\?ticket=[A-Za-z0-9_.~%-]+' <<<"$1" | head -n 1
}

# s_form PAGE — the first form's action, then every input "name=value"
# (HTML entities decoded), one a line.
s_form () {
    perl -0777 -ne '
        sub dec { my $v = shift; $v =~ s/&quot;/"/g; $v =~ s/&#39;/\x27/g; $v =~ s/&lt;/</g;
                  $v =~ s/&gt;/>/g; $v =~ s/&#x2F;/\//gi; $v =~ s/&amp;/&/g; return $v; }
        sub attr { my ($tag, $n) = @_; return $tag =~ /\b$n\s*=\s*"([^"]*)"/i ? dec ($1)
                                       : $tag =~ /\b$n\s*=\s*\x27([^\x27]*)\x27/i ? dec ($1) : undef; }
        if (/(<form\b[^>]*>)(.*?)<\/form>/is) {
            my ($form, $body) = ($1, $2);
            my $action = attr ($form, "action");
            print ((defined $action ? $action : ""), "\n");
            while ($body =~ /(<input\b[^>]*>)/gis) {
                my $tag = $1;
                my $type = lc (attr ($tag, "type") // "text");
                my $name = attr ($tag, "name");
                next unless defined $name && $type eq "hidden";
                print "$name=", (attr ($tag, "value") // ""), "\n";
            }
        }' <<<"$1"
}

# s_resolve BASE_URL REF — REF as an absolute URL.
s_resolve () {
    local base=$1 ref=$2 origin
    origin=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$base")
    case $ref in
        http://* | https://*) echo "$ref" ;;
        /*) echo "$origin$ref" ;;
        "") echo "${base%%#*}" ;;
        *) echo "${base%/*}/$ref" ;;
    esac
}

# s_query_param URL NAME — a query parameter of URL (percent-decoded).
s_query_param () {
    local v
    v=$(sed -nE "s/.*[?&]$2=([^&#]*).*/\\1/p" <<<"$1")
    printf '%b' "${v//%/\\x}"
}

# s_post_form JAR PAGE_URL PAGE EXTRA… — submits the first form of PAGE
# (its hidden fields, then EXTRA "name=value") with JAR; prints
# "STATUS LOCATION".
s_post_form () {
    local jar=$1 url=$2 page=$3; shift 3
    local lines action args=() line
    mapfile -t lines < <(s_form "$page")
    ((${#lines[@]} > 0)) || { echo "no form in the page of $url: ${page:0:400}" >&2; return 1; }
    action=$(s_resolve "$url" "${lines[0]}")
    for line in "${lines[@]:1}" "$@"; do args+=(--data-urlencode "$line"); done
    curl -sS -m 30 -b "$jar" -c "$jar" -o "$work/last-page.html" -w '%{http_code} %{redirect_url}' \
        -H "Origin: $(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$action")" "${args[@]}" "$action"
}

# s_connect LINK ACCOUNT — the connect flow as a browser, from the link a
# tool call answered with to the "Connected" page, signing in at the
# sandbox as ACCOUNT. Records the ticket, state, code and cookies as
# secrets.
s_connect () {
    local link=$1 account=$2 jar page out status location code state
    jar=$(mktemp "$work/jar.XXXXXX")
    secret "$(s_query_param "$link" ticket)"
    page=$(curl -sS -m 30 -b "$jar" -c "$jar" "$link") || return 1
    grep -qi 'sandbox' <<<"$page" || { echo "connect page: ${page:0:400}" >&2; return 1; }
    # Continue: 302 to the provider's authorize endpoint.
    out=$(s_post_form "$jar" "$link" "$page") || return 1
    status=${out%% *} location=${out#* }
    [[ $status == 302 || $status == 303 ]] && [[ $location == "$S/oauth/authorize?"* ]] ||
        { echo "connect POST: $out $(head -c 400 "$work/last-page.html")" >&2; return 1; }
    state=$(s_query_param "$location" state)
    secret "$state"
    [[ $(s_query_param "$location" code_challenge_method) == S256 ]] ||
        { echo "the authorize URL has no S256 PKCE: $location" >&2; return 1; }
    # The sandbox's consent page, then allow as ACCOUNT: 302 to the callback.
    page=$(curl -sS -m 30 -b "$jar" -c "$jar" "$location") || return 1
    out=$(s_post_form "$jar" "$location" "$page" "account=$account" decision=allow) || return 1
    status=${out%% *} location=${out#* }
    [[ $status == 302 || $status == 303 ]] && [[ $location == *"/connect/callback?"* ]] ||
        { echo "sandbox authorize POST: $out $(head -c 400 "$work/last-page.html")" >&2; return 1; }
    code=$(s_query_param "$location" code)
    secret "$code"
    [[ -n $code && $(s_query_param "$location" state) == "$state" ]] ||
        { echo "callback URL without the code or state: ${location%%\?*}" >&2; return 1; }
    page=$(curl -sS -m 30 -b "$jar" -c "$jar" -w '\n%{http_code}' "$location") || return 1
    status=${page##*$'\n'}
    [[ $status == 200 ]] && grep -qi 'connected' <<<"$page" ||
        { echo "callback: $status ${page:0:400}" >&2; return 1; }
    # The cookies the flow set (the connect cookie is a secret too).
    local value
    # (curl writes an HttpOnly cookie's line with the prefix "#HttpOnly_".)
    while read -r value; do secret "$value"; done < <(awk '(!/^#/ || /^#HttpOnly_/) && NF >= 7 { print $7 }' "$jar")
    [[ -n $(awk '(!/^#/ || /^#HttpOnly_/) && NF >= 7' "$jar") ]] || { echo "the flow set no cookie" >&2; return 1; }
}

# s_connect_from_call TOKEN ACCOUNT — a call answers isError with a link
# to connect; the flow is followed as ACCOUNT.
s_connect_from_call () {
    local msg text link
    msg=$(s_call "$1" oauth_whoami '{}') || return 1
    s_is_error "$msg" || { echo "expected isError (not connected): $msg" >&2; return 1; }
    text=$(s_text "$msg")
    link=$(s_link "$text")
    [[ -n $link ]] || { echo "no connect link in: $text" >&2; return 1; }
    s_connect "$link" "$2"
}

# s_grant ACCOUNT — the sandbox's newest grant of ACCOUNT (JSON).
s_grant () {
    curl -sS -m 10 "$S/_sandbox/oauth/grants" |
        jq -c --arg a "$1" '[.[] | select(.account == $a)] | last // empty'
}

# s_grant_field ACCOUNT FIELD — one counter of ACCOUNT's newest grant.
s_grant_field () { s_grant "$1" | jq -r ".$2"; }

# s_expire ACCOUNT — the sandbox expires the access tokens of ACCOUNT's
# newest grant now: the next call gets a 401 upstream, and the token
# service is asked to refresh (PROTOCOL.md "Connections", stale).
s_expire () {
    local id
    id=$(s_grant_field "$1" grant)
    curl -sS -m 10 -f -X POST -H 'Content-Type: application/json' -d "{\"grant\":\"$id\"}" \
        "$S/_sandbox/oauth/expire" >/dev/null
}

# s_grant_secrets — records every access and refresh token the sandbox's
# grants hold now (its test control GET /_sandbox/oauth/grants/<id>/tokens).
s_grant_secrets () {
    local id
    for id in $(curl -sS -m 10 "$S/_sandbox/oauth/grants" | jq -r '.[].grant'); do
        curl -sS -m 10 -f "$S/_sandbox/oauth/grants/$id/tokens" |
            jq -r '[.access[], .refresh, .previous, .retired[]] | .[] | strings' >>"$secrets"
    done
}

# s_oauth_fault JSON — sets the fault of the sandbox's token endpoint;
# with no argument, clears it.
s_oauth_fault () {
    if (($#)); then
        curl -sS -m 10 -f -X POST -H 'Content-Type: application/json' -d "$1" \
            "$S/_sandbox/oauth/faults" >/dev/null
    else
        curl -sS -m 10 -f -X DELETE "$S/_sandbox/oauth/faults" >/dev/null
    fi
}

# s_connection TENANT CONNECTOR COLUMNS — a connections row (superuser).
s_connection () {
    s_psql "SELECT $3 FROM connections WHERE tenant_id = '$1' AND connector = '$2'"
}

# s_in_flight ACCOUNT — true while a refresh of ACCOUNT's grant waits at
# the sandbox.
s_in_flight () { (($(s_grant_field "$1" refreshes_in_flight) > 0)); }

# s_settled ACCOUNT COUNT — true when no refresh of ACCOUNT's grant is in
# flight and more than COUNT were made.
s_settled () {
    local grant
    grant=$(s_grant "$1")
    (($(jq -r .refreshes_in_flight <<<"$grant") == 0 && $(jq -r .refreshes <<<"$grant") > $2))
}

# s_all_under KEY_ID — true when every connection is sealed under KEY_ID.
s_all_under () {
    (($(s_psql "SELECT count (*) FROM connections WHERE key_id <> '$1'") == 0))
}

# s_until SECONDS CMD… — polls CMD (every 0.2 s) until it succeeds.
s_until () {
    local deadline=$((SECONDS + $1)); shift
    until "$@" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# ---------------------------------------------------------------------
phase "tenants and user tokens"
# Plan enterprise (256 calls in flight, 12,000 a minute): fault a sends
# CONCURRENT_CALLS at once, past free's in-flight cap of 4 (docs/QUOTAS.md).
s_admin tenant create acme "Acme" --plan enterprise >/dev/null || fail "sb-admin tenant create acme"
s_admin tenant create globex "Globex" --plan enterprise >/dev/null || fail "sb-admin tenant create globex"
s_admin tenant create initech "Initech" --plan enterprise >/dev/null || fail "sb-admin tenant create initech"
acme=$(s_mint acme user:ann) || fail "sb-token"
globex=$(s_mint globex user:gus) || fail "sb-token"
initech=$(s_mint initech user:ivy) || fail "sb-token"

phase "acme connects as alice, globex as bob"
s_connect_from_call "$acme" alice || fail "acme's connect flow"
s_connect_from_call "$globex" bob || fail "globex's connect flow"
who=$(s_whoami "$acme") || fail "acme's oauth_whoami after connecting"
[[ $who == *alice* && $who != *bob* ]] || fail "acme's oauth_whoami says: $who"
who=$(s_whoami "$globex") || fail "globex's oauth_whoami after connecting"
[[ $who == *bob* && $who != *alice* ]] || fail "globex's oauth_whoami says: $who"
[[ $(s_connection acme sandbox-oauth status) == connected ]] || fail "acme's row is not connected"

phase "isolation: no tool shows acme another tenant's connection"
# Every tool acme can call on the sandbox's OAuth connector sees alice's
# grant only.
msg=$(s_call "$acme" oauth_search_accounts '{}') || fail "oauth_search_accounts"
s_ok "$msg" || fail "acme's oauth_search_accounts: $msg"
! grep -qi 'bob' <<<"$msg" || fail "acme's oauth_search_accounts shows bob: $msg"
msg=$(sb_farm_call "$acme" tools/list '{}') || fail "tools/list"
! grep -qi 'bob\|globex' <<<"$msg" || fail "acme's tools/list names globex or bob"
list=$(s_admin connections list acme) || fail "sb-admin connections list acme"
grep -q 'sandbox-oauth' <<<"$list" || fail "acme's connections list: $list"
! grep -q 'globex\|user:gus' <<<"$list" || fail "acme's list shows globex's: $list"
list=$(s_admin connections list globex) || fail "sb-admin connections list globex"
grep -q 'sandbox-oauth' <<<"$list" || fail "globex's connections list: $list"
! grep -q 'acme\|user:ann' <<<"$list" || fail "globex's list shows acme's: $list"

# ---------------------------------------------------------------------
phase "a: $CONCURRENT_CALLS concurrent calls on one expired connection, two token workers"
s_grant_secrets
before=$(s_grant_field alice refreshes)
version=$(s_connection acme sandbox-oauth version)
# alice's access token expires at the sandbox: every call's upstream
# request gets 401, each api worker asks the token service with `stale`,
# and across both token workers the grant is refreshed once.
s_expire alice || fail "a: expiring alice's tokens"
session=$(sb_farm_session "$acme") || fail "initialize"
mkdir -p "$work/burst"
args=(--parallel --parallel-max "$CONCURRENT_CALLS" -sS -m "$T_CALL_S" -X POST
      -H "Authorization: Bearer $acme" -H 'Content-Type: application/json'
      -H 'Accept: application/json, text/event-stream' -H "MCP-Protocol-Version: $SB_FARM_PROTOCOL"
      -d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"oauth_whoami","arguments":{}}}')
[[ -n $session ]] && args+=(-H "Mcp-Session-Id: $session")
for ((i = 1; i <= CONCURRENT_CALLS; i++)); do args+=(-o "$work/burst/$i" "$SB_FARM_MCP_URL"); done
burst_started=$SECONDS
curl "${args[@]}" 2>"$work/burst.err" || fail "a: a transfer of the burst failed: $(tail -n 3 "$work/burst.err")"
burst_s=$((SECONDS - burst_started))
# Every answer (plain JSON or an SSE stream's data lines) at once: the
# call's own message (id 7), a result that is not isError and says alice.
sed -n 's/^data: *//p;t;/^{/p' "$work"/burst/* >"$work/burst.jsonl"
ok=$(jq -n '[inputs | select(.id == 7 and has("result") and (.result.isError // false) == false
                              and (tojson | contains("alice")))] | length' "$work/burst.jsonl") ||
    fail "a: the answers do not parse"
if ((ok != CONCURRENT_CALLS)); then
    jq -c 'select(.id == 7 and (has("result") | not) or .result.isError == true)' "$work/burst.jsonl" |
        head -n 3 >&2 || true
fi
((ok == CONCURRENT_CALLS)) || fail "a: $ok of $CONCURRENT_CALLS calls succeeded"
after=$(s_grant_field alice refreshes)
((after == before + 1)) || fail "a: the sandbox counted $((after - before)) refreshes of alice's grant, not 1"
(($(s_grant_field alice max_concurrent_refreshes) == 1)) || fail "a: concurrent refreshes at the sandbox"
(($(s_connection acme sandbox-oauth version) == version + 1)) || fail "a: the version did not move by one"
echo "a: $CONCURRENT_CALLS calls ok in ${burst_s} s, 1 refresh"

# ---------------------------------------------------------------------
phase "b: the refreshing token worker SIGKILLed while the provider is slow"
s_grant_secrets
# One token worker runs, so the refresh is known to be its.
pid2=$(awk '$1 == "token-worker-2" { p = $2 } END { print p }' "$SB_FARM_DIR/pids")
sb_stop_pid "$pid2" 10 || fail "b: token-worker-2 did not stop on SIGTERM"
pid1=$(awk '$1 == "token-worker" { p = $2 } END { print p }' "$SB_FARM_DIR/pids")
before=$(s_grant_field bob refreshes)
version=$(s_connection globex sandbox-oauth version)
s_oauth_fault "{\"mode\":\"slow\",\"delay_ms\":$SLOW_MS}" || fail "b: the slow fault"
s_expire bob || fail "b: expiring bob's tokens"
(sb_farm_call "$globex" tools/call '{"name":"oauth_whoami","arguments":{}}' >"$work/b-first" 2>&1 || true) &
waiter=$!
# The token worker's refresh waits at the provider (which will rotate the
# refresh token when its answer is due, client or no client).
s_until "$T_POLL_S" s_in_flight bob || fail "b: no refresh of bob's grant reached the sandbox"
[[ -n $(s_connection globex sandbox-oauth lease_owner) ]] || fail "b: no lease is held during the refresh"
kill -KILL "$pid1"
killed_at=$SECONDS
wait "$pid1" 2>/dev/null || true
s_oauth_fault || fail "b: clearing the fault"
sb_farm_respawn token-worker
s_farm_wait_ready token-worker || fail "b: token-worker did not start again"
sb_farm_respawn token-worker-2
s_farm_wait_ready token-worker-2 || fail "b: token-worker-2 did not start again"
wait "$waiter" || true
# The provider rotated bob's refresh token after the worker died; the
# row still holds the one rotated away, which the sandbox takes within
# its grace.
s_until "$T_POLL_S" s_settled bob "$before" || fail "b: the slow refresh never completed at the sandbox"
[[ $(s_connection globex sandbox-oauth status) == connected ]] || fail "b: the connection is no longer connected"
[[ -n $(s_connection globex sandbox-oauth refresh_token_enc) ]] || fail "b: the refresh token is gone"
# The next call: once the dead worker's lease ends (LEASE_S), a live
# worker refreshes with the refresh token the row kept.
who=$(s_whoami "$globex") || fail "b: the call after the kill failed"
[[ $who == *bob* ]] || fail "b: oauth_whoami says: $who"
((SECONDS - killed_at <= LEASE_S + T_CALL_S)) || fail "b: the dead worker's lease held too long"
(($(s_connection globex sandbox-oauth version) > version)) || fail "b: the version did not move"
(($(s_grant_field bob grace_reuses) >= 1)) || fail "b: the kept refresh token was not the rotated-away one"
[[ $(s_grant_field bob revoked) == false ]] || fail "b: bob's grant was revoked"
echo "b: the call after the kill succeeded ($(($(s_grant_field bob refreshes) - before)) refreshes counted, $(s_grant_field bob grace_reuses) in the grace)"

# ---------------------------------------------------------------------
phase "c: PostgreSQL stopped and started again"
s_grant_secrets
s_expire alice || fail "c: expiring alice's tokens"
sb_pg_stop "$SB_FARM_DIR/pg"
msg=$(s_call "$acme" oauth_whoami '{}') || fail "c: the call while PostgreSQL is down got no answer"
s_is_error "$msg" || fail "c: a call with an expired token succeeded without the database: $msg"
text=$(s_text "$msg")
[[ ${#text} -gt 20 && $text == *" "* ]] || fail "c: no sentence: $msg"
echo "c: while down: $text"
sb_pg_restart "$SB_FARM_DIR/pg" || fail "c: PostgreSQL did not start again"
s_until "$T_POLL_S" s_whoami "$acme" >/dev/null || fail "c: calls did not succeed after PostgreSQL came back"

# ---------------------------------------------------------------------
phase "d: the provider down with an expired token"
s_grant_secrets
s_oauth_fault '{"mode":"down"}' || fail "d: the down fault"
s_expire alice || fail "d: expiring alice's tokens"
msg=$(s_call "$acme" oauth_whoami '{}') || fail "d: no answer"
s_is_error "$msg" || fail "d: success with the provider down and the token expired: $msg"
text=$(s_text "$msg")
[[ ${#text} -gt 20 && $text == *" "* ]] || fail "d: no sentence: $msg"
echo "d: provider down: $text"
[[ $(s_connection acme sandbox-oauth status) == connected ]] || fail "d: a transient failure changed the status"
s_oauth_fault || fail "d: clearing the fault"
s_until "$T_POLL_S" s_whoami "$acme" >/dev/null || fail "d: calls did not succeed after the provider came back"

# ---------------------------------------------------------------------
phase "e: invalid_grant breaks the connection; connecting again fixes it"
s_grant_secrets
s_oauth_fault '{"mode":"invalid_grant"}' || fail "e: the invalid_grant fault"
s_expire alice || fail "e: expiring alice's tokens"
msg=$(s_call "$acme" oauth_whoami '{}') || fail "e: no answer"
s_is_error "$msg" || fail "e: success after invalid_grant: $msg"
text=$(s_text "$msg")
link=$(s_link "$text")
[[ -n $link ]] || fail "e: no reconnect link in: $text"
grep -qi 'connect' <<<"$text" || fail "e: no reconnect sentence: $text"
echo "e: broken: $text"
[[ $(s_connection acme sandbox-oauth status) == broken ]] || fail "e: the connection is not broken"
s_admin --json audit acme --limit 200 |
    jq -e '[.entries[] | select(.action == "connection_broken")] | length >= 1' >/dev/null ||
    fail "e: no connection_broken row in acme's audit log"
s_oauth_fault || fail "e: clearing the fault"
s_connect "$link" alice || fail "e: reconnecting"
[[ $(s_connection acme sandbox-oauth status) == connected ]] || fail "e: not connected after reconnecting"
who=$(s_whoami "$acme") || fail "e: oauth_whoami after reconnecting"
[[ $who == *alice* ]] || fail "e: oauth_whoami says: $who"

# ---------------------------------------------------------------------
phase "f: an API-key connection added with sb-admin"
keyed_id=$(curl -sS -m 10 -H "X-API-Key: $keyed_key" "http://127.0.0.1:$keyed_port/v1/accounts?limit=1" |
           jq -r '.items[0].id') || fail "f: the keyed sandbox's first account"
(umask 077; echo "$keyed_key" >"$work/acme.key"; echo "wrong-$(rand 8)" >"$work/initech.key")
s_admin connections add-key acme sandbox-keyed --key-file "$work/acme.key" >/dev/null ||
    fail "f: sb-admin connections add-key acme"
s_admin connections add-key initech sandbox-keyed --key-file "$work/initech.key" >/dev/null ||
    fail "f: sb-admin connections add-key initech"
secret "$(<"$work/initech.key")"
msg=$(s_call "$acme" keyed_get_account "{\"id\":\"$keyed_id\"}") || fail "f: no answer"
s_ok "$msg" && grep -q "$keyed_id" <<<"$msg" || fail "f: acme's call with its key: $msg"
# initech's own key (one the sandbox does not take) is what its call sends.
msg=$(s_call "$initech" keyed_get_account "{\"id\":\"$keyed_id\"}") || fail "f: no answer for initech"
s_is_error "$msg" || fail "f: initech's call with a wrong key succeeded: $msg"
# globex has none: ask its administrator (no link: an operator adds keys).
msg=$(s_call "$globex" keyed_get_account "{\"id\":\"$keyed_id\"}") || fail "f: no answer for globex"
s_is_error "$msg" || fail "f: globex's call without a key: $msg"
text=$(s_text "$msg")
grep -qi 'administrator' <<<"$text" || fail "f: globex is not told to ask its administrator: $text"
[[ -z $(s_link "$text") ]] || fail "f: a connect link for an API-key connector: $text"
echo "f: globex: $text"
list=$(s_admin connections list acme) || fail "f: sb-admin connections list acme"
grep -q 'sandbox-keyed' <<<"$list" || fail "f: acme's list has no sandbox-keyed: $list"

# ---------------------------------------------------------------------
phase "g: data-key rotation while calls run"
s_grant_secrets
old_key=$(s_psql "SELECT id FROM connection_keys WHERE current")
# Rounds of calls on every connection, each round with a tenant that
# connects then (its row sealed under whichever key is current then) and
# calls at once (its row opened under that key); the rotation starts
# after the first rounds and the rounds go on after it.
(
    for ((i = 0; i < ROTATE_ROUNDS; i++)); do
        for t in "$acme" "$globex"; do
            m=$(s_call "$t" oauth_whoami '{}') && s_ok "$m" || { echo "round $i: $m"; exit 1; }
        done
        m=$(s_call "$acme" keyed_get_account "{\"id\":\"$keyed_id\"}") && s_ok "$m" ||
            { echo "round $i: keyed: $m"; exit 1; }
        s_admin tenant create "rot-$i" "Rotation $i" >/dev/null || { echo "round $i: tenant"; exit 1; }
        token=$(s_mint "rot-$i" "user:r$i") || exit 1
        s_connect_from_call "$token" "carol-$i" || { echo "round $i: connect"; exit 1; }
        who=$(s_whoami "$token") && [[ $who == *"carol-$i"* ]] || { echo "round $i: whoami $who"; exit 1; }
        echo "round $i done"
    done
) >"$work/rotate.out" 2>&1 &
rotating=$!
s_until "$T_POLL_S" grep -q 'round 0 done' "$work/rotate.out" ||
    fail "g: the calls before the rotation: $(tail -n 3 "$work/rotate.out")"
s_admin connection-keys rotate >"$work/rotate.admin" 2>&1 ||
    fail "g: sb-admin connection-keys rotate: $(<"$work/rotate.admin")"
rotated_at=$(grep -c 'round .* done' "$work/rotate.out" || true)
wait "$rotating" || fail "g: a call failed during the rotation: $(tail -n 3 "$work/rotate.out")"
((rotated_at < ROTATE_ROUNDS)) || fail "g: the rotation ended after the calls"
new_key=$(s_psql "SELECT id FROM connection_keys WHERE current")
[[ -n $new_key && $new_key != "$old_key" ]] || fail "g: no new current key ($new_key, before $old_key)"
s_until "$T_POLL_S" s_all_under "$new_key" ||
    fail "g: rows left under another key: $(s_psql "SELECT tenant_id, connector, key_id FROM connections")"
# And a refresh after it: sealed under the new key, opened by both workers.
s_expire alice || fail "g: expiring alice's tokens"
who=$(s_whoami "$acme") && [[ $who == *alice* ]] || fail "g: acme after the rotation: $who"
[[ $(s_connection acme sandbox-oauth key_id) == "$new_key" ]] || fail "g: the refreshed row is not under the new key"
echo "g: rotated after $rotated_at of $ROTATE_ROUNDS rounds; every row under the new key"

# ---------------------------------------------------------------------
phase "no secret in any log"
s_grant_secrets
sort -u "$secrets" | awk 'length ($0) >= 8' >"$secrets.u"
count=$(wc -l <"$secrets.u")
((count >= 10)) || fail "only $count secrets were collected: the test saw too little"
# The logs searched are the debug-level ones the farm wrote, and the
# search finds what is in them (the grant IDs are logged, not secret).
grep -q '"level":"debug"' "$SB_FARM_DIR/logs/token-worker.log" || fail "the token worker did not log at debug"
grep -rqF "$(s_grant_field alice grant)" "$SB_FARM_DIR/logs" || fail "the log search finds nothing"
found=$(grep -rlF -f "$secrets.u" "$SB_FARM_DIR/logs" || true)
[[ -z $found ]] || fail "a secret is in: $found ($(grep -ohF -f "$secrets.u" "$SB_FARM_DIR/logs" | head -n 1 | cut -c1-6)…)"
# And any token or code of the sandbox's shape (sbat_/sbrt_/sbac_ and 43
# base64url characters), including those issued and replaced between
# two looks at the grants.
found=$(grep -rlE 'sb(at|rt|ac)_[A-Za-z0-9_-]{43}' "$SB_FARM_DIR/logs" || true)
[[ -z $found ]] || fail "a sandbox token or code is in: $found"
logs=("$SB_FARM_DIR"/logs/*.log)
echo "no secret in any log: $count secrets, ${#logs[@]} logs"
echo "PASS"
