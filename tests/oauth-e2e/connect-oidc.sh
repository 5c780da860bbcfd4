#!/usr/bin/env bash
# tests/oauth-e2e/connect-oidc.sh — the connect flow against a provider
# others wrote (issue 21 item 5): prepares what connect_oidc.test.mjs needs
# before its farm starts, then runs it through run.sh.
#
#   tests/oauth-e2e/connect-oidc.sh BUILD_DIR WORK_DIR
#
# A free port for oidc-provider (the test starts it there), a client ID and
# secret for it (in the environment every farm process inherits, as
# SB_OIDC_CLIENT_ID / SB_OIDC_CLIENT_SECRET, which the connector names), and
# WORK_DIR/connectors/oidc-test.json: auth oauth2 with oidc-provider's
# absolute authorization and token URLs, base_url its issuer, one tool
# `oidc_userinfo` (GET /me, the OpenID Connect userinfo endpoint); beside it
# the sandbox's sandbox-oauth.json, with a made-up client for the sandbox's
# provider. The farm's api and token workers and its gateway get that folder
# after connectors/.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/oauth-e2e/farm.sh
source "$here/farm.sh"

[[ $# -eq 2 ]] || sb_die "usage: $0 BUILD_DIR WORK_DIR"
mkdir -p "$2/connectors"
work=$(cd "$2" && pwd)

port=$(sb_free_port) || exit 1
issuer="http://127.0.0.1:$port"
SB_OIDC_PORT=$port
SB_OIDC_CLIENT_ID="switchboard-connect-$(od -An -tx1 -N4 /dev/urandom | tr -d ' \n')"
SB_OIDC_CLIENT_SECRET=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
export SB_OIDC_PORT SB_OIDC_CLIENT_ID SB_OIDC_CLIENT_SECRET

# Written aside and renamed, as connectors/README.md asks.
cat >"$work/connectors/.oidc-test.json.tmp" <<JSON
{
  "\$comment": "Written by tests/oauth-e2e/connect-oidc.sh: oidc-provider (npm) as a tenant's SaaS.",
  "name": "oidc-test",
  "title": "OIDC test provider",
  "display_name": "the OIDC test provider",
  "base_url": "$issuer",
  "auth": {
    "type": "oauth2",
    "oauth2": {
      "authorize_url": "$issuer/auth",
      "token_url": "$issuer/token",
      "client_id_env": "SB_OIDC_CLIENT_ID",
      "client_secret_env": "SB_OIDC_CLIENT_SECRET",
      "scopes": ["openid", "offline_access"],
      "authorize_params": { "prompt": "consent" }
    }
  },
  "limits": { "timeout_ms": 10000 },
  "tools": [
    {
      "name": "oidc_userinfo",
      "title": "Who am I",
      "description": "The signed-in account of the tenant's connection (OpenID Connect userinfo).",
      "annotations": { "readOnlyHint": true, "destructiveHint": false,
                       "idempotentHint": true, "openWorldHint": true },
      "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
      "request": { "method": "GET", "path": "/me" },
      "result": { "mapping": "object", "pointer": "", "title": "sub", "noun": "account" }
    }
  ]
}
JSON
mv "$work/connectors/.oidc-test.json.tmp" "$work/connectors/oidc-test.json"

# And the sandbox's own provider (tests/fixtures/connectors/sandbox-oauth.json,
# copied alone: the other fixtures need the test api worker), whose connect
# page the test opens too; the sandbox and the token worker read the client.
cp "$SB_SOURCE_DIR/tests/fixtures/connectors/sandbox-oauth.json" "$work/connectors/"
SB_SANDBOX_OAUTH_CLIENT_ID=switchboard-connect-oidc-test
SB_SANDBOX_OAUTH_CLIENT_SECRET=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
export SB_SANDBOX_OAUTH_CLIENT_ID SB_SANDBOX_OAUTH_CLIENT_SECRET
export SB_FARM_SANDBOX_CONNECTORS=sandbox-crm,sandbox-oauth

export SB_FARM_CONNECTORS="$SB_SOURCE_DIR/connectors:$work/connectors"
exec "$here/run.sh" "$1" "$work" "$here/connect_oidc.test.mjs"
