/*  gateway/sb_token_main.c — sb-token: issues a signed access token (JWT
    HS256 under the token key, or EdDSA under an Ed25519 private key and its
    kid) for a tenant and prints it on stdout. For operators, the demo and
    tests; the OAuth server issues tokens the same way. With --print-jwk it
    prints the public JWK of the private key instead, for the gateways'
    --token-jwks-file. */
#include "sb_jwks.h"
#include "sb_keyfile.h"
#include "sb_clock.h"
#include "sb_config.h"
#include "sb_log.h"
#include "sb_oauth.h"
#include "sb_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sb_option_t s_options [] = {
    { "key-file", SB_OPT_STR, "", 0, 0, "SB_TOKEN_KEY_FILE",
      "file holding the HS256 token key as 64+ hex digits" },
    { "private-key-file", SB_OPT_STR, "", 0, 0, "SB_TOKEN_PRIVATE_KEY_FILE",
      "file holding an Ed25519 private key (seed) as 64 hex digits: sign EdDSA instead of HS256" },
    { "kid", SB_OPT_STR, "", 0, 0, "SB_TOKEN_KID",
      "key ID of the private key, as the gateways' JWKS names it (EdDSA only)" },
    { "print-jwk", SB_OPT_BOOL, "false", 0, 0, NULL,
      "print the public JWK of --private-key-file under --kid instead of a token" },
    { "tenant", SB_OPT_STR, "", 0, 0, NULL, "tenant ID the token grants (ten claim)" },
    { "subject", SB_OPT_STR, "admin", 0, 0, NULL, "user the token stands for (sub claim)" },
    { "client-id", SB_OPT_STR, "sb-token", 0, 0, NULL, "OAuth client ID (cid claim)" },
    { "scope", SB_OPT_STR, SB_OAUTH_SCOPES_SUPPORTED, 0, 0, NULL,
      "space-separated scopes: mcp:tools (any use of /mcp), mcp:write (calls of tools not read-only)" },
    { "ttl", SB_OPT_INT, "3600", 1, 31536000, NULL, "lifetime in seconds" },
    { "audience", SB_OPT_STR, "http://127.0.0.1:8080/mcp", 0, 0, "SB_TOKEN_AUDIENCE",
      "MCP resource URL the token is for (<public-url>/mcp)" },
    { .name = NULL }
};

//  Copies `value` into a claim buffer; -1 with a message if it does not fit.
static int
s_claim (char *buf, size_t size, const char *name, const char *value)
{
    if (strlen (value) >= size) {
        fprintf (stderr, "sb-token: --%s is longer than %zu bytes\n", name, size - 1);
        return -1;
    }
    snprintf (buf, size, "%s", value);
    return 0;
}

int
main (int argc, char **argv)
{
    int rc = 2;
    char *token = NULL;
    sb_config_t *config = sb_config_new ("sb-token", s_options);
    if (!config)
        return 2;
    int loaded = sb_config_load (config, argc, argv);
    if (loaded) {
        sb_config_destroy (&config);
        return loaded == 1? 0: 2;
    }
    sb_log_init ("sb-token", SB_LOG_WARN);
    uint8_t key [SB_MAX_TOKEN_KEY_LEN];
    size_t key_len = 0;
    const char *private_file = sb_config_str (config, "private-key-file");
    const char *kid = sb_config_str (config, "kid");
    bool eddsa = private_file && *private_file;
    if (eddsa) {
        if (sb_keyfile_load (private_file, "private key", key, &key_len))
            goto out;
        if (key_len != SB_ED25519_KEY_LEN || !sb_jwks_kid_valid (kid)) {
            fprintf (stderr, "sb-token: an Ed25519 private key is 64 hex digits, and --kid must be "
                             "1-%d chars of A-Z a-z 0-9 . _ -\n", SB_MAX_KID_LEN);
            goto out;
        }
        if (sb_config_bool (config, "print-jwk")) {
            token = sb_jwks_public_jwk (key, kid);
            if (token) {
                printf ("%s\n", token);
                rc = 0;
            }
            goto out;
        }
    }
    else
    if (sb_keyfile_load (sb_config_str (config, "key-file"), "token key", key, &key_len))
        goto out;
    sb_token_claims_t claims;
    memset (&claims, 0, sizeof claims);
    if (s_claim (claims.tenant, sizeof claims.tenant, "tenant", sb_config_str (config, "tenant"))
    ||  s_claim (claims.subject, sizeof claims.subject, "subject", sb_config_str (config, "subject"))
    ||  s_claim (claims.client_id, sizeof claims.client_id, "client-id", sb_config_str (config, "client-id"))
    ||  s_claim (claims.scope, sizeof claims.scope, "scope", sb_config_str (config, "scope"))
    ||  s_claim (claims.audience, sizeof claims.audience, "audience", sb_config_str (config, "audience")))
        goto out;
    claims.issued_at = sb_clock_wall_ms () / 1000;
    claims.expires_at = claims.issued_at + sb_config_int (config, "ttl");
    token = eddsa? sb_token_issue_eddsa (&claims, key, kid): sb_token_issue (&claims, key, key_len);
    if (!token) {
        fprintf (stderr, "sb-token: cannot issue a token (tenant must be 1-64 chars of A-Z a-z 0-9 . _ : -)\n");
        goto out;
    }
    printf ("%s\n", token);
    rc = 0;
out:
    memset (key, 0, sizeof key);
    free (token);
    sb_config_destroy (&config);
    return rc;
}
