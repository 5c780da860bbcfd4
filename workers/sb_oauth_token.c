/*  workers/sb_oauth_token.c — POST /token and POST /revoke (RFC 6749 §4.1.3
    and §6, RFC 7009) as the token role's oauth/token and oauth/revoke jobs
    (sb_token_int.h; docs/OAUTH.md, "The stateful half").

    /token, one database statement per step:
      1. the request alone (sb_oauth_token_validate, the resource);
      2. the client (sb_oauth_client_find_owned) and its authentication;
      3. the current signing key (sb_oauth_keys_current), before anything
         is spent, so a token is never lost for want of a key;
      4. authorization_code: oauth_code_redeem checks the code, the worker
         checks the PKCE verifier against the stored challenge, then
         oauth_code_redeem again spends the code and creates the refresh
         family and its first token; refresh_token: oauth_refresh_rotate
         rotates the token (db/migrations/006);
      5. the access token (EdDSA JWT) is signed and the answer written.
    A refusal is the RFC's error and changes nothing; a refusal the
    database decides is audited there under the tenant, one decided here
    with the tenant known (a PKCE mismatch) is audited by oauth_audit, and
    one with no tenant (an unknown client, code or token) goes to the
    process log. Nothing secret is logged or audited: no code, token,
    verifier or client secret, only their outcome. */
#include "sb_token_int.h"
#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_log.h"
#include "sb_oauth_clients.h"
#include "sb_token.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_OAUTH_TOKEN_BYTES    32      /* random bytes of a refresh token (43 base64url characters) */

//  One /token or /revoke request on its way through the steps.
typedef struct {
    sb_token_role_t *self;
    bool revoke;                            /* /revoke, else /token */
    sb_oauth_token_request_t token;         /* /token's request */
    sb_oauth_revoke_request_t revocation;   /* /revoke's request */
    sb_oauth_signing_key_t key;             /* the key to sign with (a copy) */
    char digest_hex [2 * SB_HMAC_SHA256_LEN + 1];       /* the code's or presented token's */
    char refresh [SB_OAUTH_MAX_REFRESH + 1];            /* the new refresh token */
    char refresh_hex [2 * SB_HMAC_SHA256_LEN + 1];      /* its digest */
    char tenant [SB_MAX_TENANT_LEN + 1];    /* known from the code */
} s_exchange_t;

static void
s_exchange_free (void *arg)
{
    s_exchange_t *exchange = arg;
    if (exchange)
        sb_crypto_wipe (exchange, sizeof *exchange);
    free (exchange);
}

//  Ends the job with OAuth error `code` (and frees the exchange).
static void
s_refuse (sb_worker_job_t **job_p, s_exchange_t *exchange, sb_oauth_code_t code,
          bool basic_challenge, const char *description)
{
    sb_oauth_error_t error = {
        .code = code, .status = code == SB_OAUTH_INVALID_CLIENT? 401: 400,
        .basic_challenge = basic_challenge
    };
    snprintf (error.description, sizeof error.description, "%s", description);
    sb_token_http_oauth_error (job_p, &error);
    s_exchange_free (exchange);
}

//  The hex SHA-256 of `secret` into `hex`.
static void
s_digest_hex (const char *secret, char hex [2 * SB_HMAC_SHA256_LEN + 1])
{
    uint8_t digest [SB_HMAC_SHA256_LEN];
    sb_sha256 (secret, strlen (secret), digest);
    sb_hex_encode (digest, sizeof digest, hex);
}

//  A new refresh token and its digest into the exchange. 0 or -1.
static int
s_new_refresh (s_exchange_t *exchange)
{
    uint8_t raw [SB_OAUTH_TOKEN_BYTES];
    if (sb_crypto_random (raw, sizeof raw))
        return -1;
    char *text = sb_base64url_encode (raw, sizeof raw);
    sb_crypto_wipe (raw, sizeof raw);
    if (!text)
        return -1;
    snprintf (exchange->refresh, sizeof exchange->refresh, "%s", text);
    sb_crypto_wipe (text, strlen (text));
    free (text);
    s_digest_hex (exchange->refresh, exchange->refresh_hex);
    return 0;
}

//  True when the database's result is one row of `fields` columns.
static bool
s_one_row (const PGresult *res, const char *error, int fields, const char *what)
{
    if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
    &&  PQnfields (res) == fields)
        return true;
    sb_log_warn ("db_error", "%s: %s", what, error? error: res? PQresultErrorMessage (res): "no result");
    return false;
}

//  ---------------------------------------------------------------------
//  The answer

#define SB_OAUTH_JTI_BYTES  16      /* random bytes of an access token's jti */

//  Every client ID the form parser lets through fits an access token.
_Static_assert (sizeof ((sb_token_claims_t *) 0)->client_id > SB_OAUTH_MAX_CLIENT_ID,
                "an access token's client_id holds any client ID");

//  Signs the access token for the exchange's key and answers 200.
static void
s_issue (sb_worker_job_t **job_p, s_exchange_t *exchange, const char *tenant, const char *user,
         const char *scope)
{
    sb_token_role_t *self = exchange->self;
    sb_token_claims_t claims;
    memset (&claims, 0, sizeof claims);
    claims.issued_at = sb_clock_wall_ms () / 1000;
    claims.expires_at = claims.issued_at + SB_OAUTH_ACCESS_TTL_S;
    int fit = snprintf (claims.issuer, sizeof claims.issuer, "%s", self->issuer) < (int) sizeof claims.issuer
           && snprintf (claims.audience, sizeof claims.audience, "%s", self->resource) < (int) sizeof claims.audience
           && snprintf (claims.tenant, sizeof claims.tenant, "%s", tenant) < (int) sizeof claims.tenant
           && snprintf (claims.subject, sizeof claims.subject, "user:%s", user) < (int) sizeof claims.subject
           && snprintf (claims.client_id, sizeof claims.client_id, "%s",
                        exchange->token.client_id) < (int) sizeof claims.client_id
           && snprintf (claims.scope, sizeof claims.scope, "%s", scope) < (int) sizeof claims.scope;
    //  jti (RFC 9068 §2.2): two tokens issued in one second differ.
    uint8_t nonce [SB_OAUTH_JTI_BYTES];
    char *jti = fit && sb_crypto_random (nonce, sizeof nonce) == 0?
                sb_base64url_encode (nonce, sizeof nonce): NULL;
    fit = fit && jti && snprintf (claims.jwt_id, sizeof claims.jwt_id, "%s", jti) < (int) sizeof claims.jwt_id;
    free (jti);
    char *access = fit? sb_token_issue_eddsa (&claims, exchange->key.seed, exchange->key.kid): NULL;
    json_t *doc = access? json_pack ("{s:s, s:s, s:i, s:s, s:s}", "access_token", access,
                                     "token_type", "Bearer", "expires_in", SB_OAUTH_ACCESS_TTL_S,
                                     "refresh_token", exchange->refresh, "scope", scope): NULL;
    char *body = doc? json_dumps (doc, JSON_COMPACT): NULL;
    json_decref (doc);
    if (body)
        sb_token_http_json (job_p, 200, body);
    else {
        //  The refresh token was stored: the client can still refresh.
        sb_log_error ("token_unsigned", "an access token could not be signed for client %s%s",
                      exchange->token.client_id, fit? "": " (a claim is longer than a token holds)");
        sb_worker_job_fail (job_p, "the access token could not be signed");
    }
    sb_token_wipe_free (&access);
    sb_token_wipe_free (&body);
    s_exchange_free (exchange);
}

//  The error for a database outcome word (db/migrations/006).
static void
s_refuse_outcome (sb_worker_job_t **job_p, s_exchange_t *exchange, const char *outcome)
{
    static const struct {
        const char *outcome;
        sb_oauth_code_t code;
        const char *description;
    } map [] = {
        { "unknown", SB_OAUTH_INVALID_GRANT, "The grant is not one this server issued." },
        { "used", SB_OAUTH_INVALID_GRANT,
          "The authorization code was already used; what it issued is revoked." },
        { "client", SB_OAUTH_INVALID_GRANT, "The grant was issued to another client." },
        { "redirect_uri", SB_OAUTH_INVALID_GRANT,
          "The redirect_uri differs from the authorization request's." },
        { "expired", SB_OAUTH_INVALID_GRANT, "The grant has expired." },
        { "revoked", SB_OAUTH_INVALID_GRANT, "The refresh token was revoked." },
        { "reuse", SB_OAUTH_INVALID_GRANT,
          "The refresh token was already used; every token of its family is revoked." },
        { "user_disabled", SB_OAUTH_INVALID_GRANT, "The user can no longer sign in." },
        { "grant_revoked", SB_OAUTH_INVALID_GRANT, "The user's consent to this client was revoked." },
        { "scope", SB_OAUTH_INVALID_SCOPE, "The scope asked for is wider than the grant's." },
    };
    for (size_t i = 0; i < sizeof map / sizeof map [0]; i++)
        if (strcmp (outcome, map [i].outcome) == 0) {
            if (strcmp (outcome, "unknown") == 0)
                //  No tenant to audit under.
                sb_log_warn ("token_refused", "client %s: %s", exchange->token.client_id,
                             exchange->token.grant == SB_OAUTH_GRANT_AUTHORIZATION_CODE
                             ? "unknown authorization code": "unknown refresh token");
            s_refuse (job_p, exchange, map [i].code, false, map [i].description);
            return;
        }
    sb_log_error ("token_outcome", "the database answered an unknown outcome \"%s\"", outcome);
    sb_worker_job_fail (job_p, "the authorization server's database answered something unknown");
    s_exchange_free (exchange);
}

//  ---------------------------------------------------------------------
//  grant_type=refresh_token

static void
s_on_rotated (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_exchange_t *exchange = arg;
    if (!s_one_row (res, error, 6, "refresh token rotation")) {
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        s_exchange_free (exchange);
        return;
    }
    const char *outcome = PQgetvalue (res, 0, 0);
    if (strcmp (outcome, "ok") != 0) {
        s_refuse_outcome (job_p, exchange, outcome);
        return;
    }
    s_issue (job_p, exchange, PQgetvalue (res, 0, 1), PQgetvalue (res, 0, 2), PQgetvalue (res, 0, 3));
}

static void
s_refresh (sb_worker_job_t **job_p, s_exchange_t *exchange)
{
    s_digest_hex (exchange->token.refresh_token, exchange->digest_hex);
    if (s_new_refresh (exchange)) {
        sb_worker_job_fail (job_p, "no random bytes for a refresh token");
        s_exchange_free (exchange);
        return;
    }
    char ttl [16];
    snprintf (ttl, sizeof ttl, "%d", SB_OAUTH_REFRESH_TTL_S);
    const char *params [] = {
        exchange->digest_hex, exchange->token.client_id,
        *exchange->token.scope? exchange->token.scope: NULL, exchange->refresh_hex, ttl
    };
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    sb_token_query (exchange->self, job,
                    "SELECT outcome, tenant_id, user_id, scope, resource, family_id"
                    "  FROM oauth_refresh_rotate (decode ($1, 'hex'), $2, $3, decode ($4, 'hex'),"
                    "                             $5::int)",
                    5, params, s_on_rotated, exchange, s_exchange_free);
}

//  ---------------------------------------------------------------------
//  grant_type=authorization_code

static const char s_redeem_sql [] =
    "SELECT outcome, tenant_id, user_id, scope, resource, code_challenge, family_id"
    "  FROM oauth_code_redeem (decode ($1, 'hex'), $2, $3, decode ($4, 'hex'), $5::int)";

static void
s_on_redeemed (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_exchange_t *exchange = arg;
    if (!s_one_row (res, error, 7, "authorization code redemption")) {
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        s_exchange_free (exchange);
        return;
    }
    const char *outcome = PQgetvalue (res, 0, 0);
    if (strcmp (outcome, "ok") != 0) {
        s_refuse_outcome (job_p, exchange, outcome);
        return;
    }
    s_issue (job_p, exchange, PQgetvalue (res, 0, 1), PQgetvalue (res, 0, 2), PQgetvalue (res, 0, 3));
}

static void
s_on_pkce_audited (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    if (!res || PQresultStatus (res) != PGRES_TUPLES_OK)
        sb_log_warn ("audit_failed", "token_refused (PKCE): %s",
                     error? error: res? PQresultErrorMessage (res): "no result");
    s_refuse (job_p, arg, SB_OAUTH_INVALID_GRANT, false,
              "The code_verifier does not match the code_challenge.");
}

static void
s_on_code_checked (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_exchange_t *exchange = arg;
    if (!s_one_row (res, error, 7, "authorization code check")) {
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        s_exchange_free (exchange);
        return;
    }
    const char *outcome = PQgetvalue (res, 0, 0);
    if (strcmp (outcome, "ok") != 0) {
        s_refuse_outcome (job_p, exchange, outcome);
        return;
    }
    snprintf (exchange->tenant, sizeof exchange->tenant, "%s", PQgetvalue (res, 0, 1));
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    if (!sb_oauth_pkce_verify (exchange->token.code_verifier, PQgetvalue (res, 0, 5))) {
        //  Refused, and the code is not spent (006: oauth_code_redeem).
        json_t *detail = json_pack ("{s:s, s:s, s:s}", "grant_type", "authorization_code",
                                    "client_id", exchange->token.client_id, "reason", "code_pkce");
        char *text = detail? json_dumps (detail, JSON_COMPACT): NULL;
        json_decref (detail);
        const char *params [] = { exchange->tenant, exchange->token.client_id, text };
        if (text)
            sb_token_query (exchange->self, job,
                            "SELECT oauth_audit ($1, $2, 'token_refused', $3::jsonb)",
                            3, params, s_on_pkce_audited, exchange, s_exchange_free);
        else {
            sb_worker_job_fail (&job, "out of memory");
            s_exchange_free (exchange);
        }
        free (text);
        return;
    }
    if (s_new_refresh (exchange)) {
        sb_worker_job_fail (&job, "no random bytes for a refresh token");
        s_exchange_free (exchange);
        return;
    }
    char ttl [16];
    snprintf (ttl, sizeof ttl, "%d", SB_OAUTH_REFRESH_TTL_S);
    const char *params [] = {
        exchange->digest_hex, exchange->token.client_id, exchange->token.redirect_uri,
        exchange->refresh_hex, ttl
    };
    sb_token_query (exchange->self, job, s_redeem_sql, 5, params, s_on_redeemed, exchange,
                    s_exchange_free);
}

static void
s_code (sb_worker_job_t **job_p, s_exchange_t *exchange)
{
    s_digest_hex (exchange->token.code, exchange->digest_hex);
    const char *params [] = {
        exchange->digest_hex, exchange->token.client_id, exchange->token.redirect_uri, NULL, NULL
    };
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    sb_token_query (exchange->self, job, s_redeem_sql, 5, params, s_on_code_checked, exchange,
                    s_exchange_free);
}

//  ---------------------------------------------------------------------
//  /revoke

static void
s_on_revoked (sb_worker_job_t **job_p, const PGresult *res, const char *error, void *arg)
{
    s_exchange_t *exchange = arg;
    if (!s_one_row (res, error, 1, "revocation")) {
        sb_worker_job_fail (job_p, "the authorization server's database failed");
        s_exchange_free (exchange);
        return;
    }
    const char *outcome = PQgetvalue (res, 0, 0);
    if (strcmp (outcome, "unknown") == 0)
        sb_log_info ("revoke_unknown", "client %s revoked a token this server does not hold "
                     "(an access token, or an unknown one): nothing to do",
                     exchange->revocation.client_id);
    //  RFC 7009 §2.2: 200 whether or not the token was known.
    sb_token_http_json (job_p, 200, "{}");
    s_exchange_free (exchange);
}

//  ---------------------------------------------------------------------
//  The client, then the key

static void
s_on_key (sb_worker_job_t **job_p, const sb_oauth_signing_key_t *key, void *arg)
{
    s_exchange_t *exchange = arg;
    exchange->key = *key;
    if (exchange->token.grant == SB_OAUTH_GRANT_AUTHORIZATION_CODE)
        s_code (job_p, exchange);
    else
        s_refresh (job_p, exchange);
}

static void
s_on_client (sb_worker_job_t **job_p, const sb_oauth_client_row_t *client, const char *error,
             void *arg)
{
    s_exchange_t *exchange = arg;
    sb_oauth_auth_t auth = exchange->revoke? exchange->revocation.auth: exchange->token.auth;
    const char *client_id = exchange->revoke? exchange->revocation.client_id: exchange->token.client_id;
    const char *secret = exchange->revoke? exchange->revocation.client_secret
                                         : exchange->token.client_secret;
    bool basic = auth == SB_OAUTH_AUTH_BASIC;
    if (error) {
        sb_worker_job_fail (job_p, error);
        s_exchange_free (exchange);
        return;
    }
    const char *why = NULL;
    if (!client)
        why = "The client is unknown or was revoked.";
    else
    if (client->has_secret) {
        sb_oauth_auth_t registered = strcmp (client->auth_method, "client_secret_post") == 0
                                   ? SB_OAUTH_AUTH_POST: SB_OAUTH_AUTH_BASIC;
        if (auth != registered)
            why = registered == SB_OAUTH_AUTH_BASIC
                ? "The client must authenticate with client_secret_basic."
                : "The client must authenticate with client_secret_post.";
        else
        if (!sb_oauth_client_secret_ok (client, secret))
            why = "The client authentication failed.";
    }
    else
    if (auth != SB_OAUTH_AUTH_NONE)
        why = "The client is public: it has no secret to send.";
    if (why) {
        //  No tenant is known yet: the process log, never the secret.
        sb_log_warn ("client_auth_failed", "%s: client %s: %s", exchange->revoke? "/revoke": "/token",
                     client_id, why);
        s_refuse (job_p, exchange, SB_OAUTH_INVALID_CLIENT, basic, why);
        return;
    }
    if (exchange->revoke) {
        s_digest_hex (exchange->revocation.token, exchange->digest_hex);
        const char *params [] = { exchange->digest_hex, exchange->revocation.client_id };
        sb_worker_job_t *job = *job_p;
        *job_p = NULL;
        sb_token_query (exchange->self, job, "SELECT oauth_refresh_revoke (decode ($1, 'hex'), $2)",
                        2, params, s_on_revoked, exchange, s_exchange_free);
        return;
    }
    sb_worker_job_t *job = *job_p;
    *job_p = NULL;
    sb_oauth_keys_current (exchange->self, job, s_on_key, exchange, s_exchange_free);
}

//  ---------------------------------------------------------------------
//  The ops

//  Decodes the job's request; NULL when the job was ended (a bad job, or
//  no --issuer: OAuth jobs are refused).
static sb_http_request_t *
s_request (sb_token_role_t *self, sb_worker_job_t **job_p, sb_http_request_t *request)
{
    memset (request, 0, sizeof *request);
    if (!*self->issuer) {
        sb_worker_job_fail (job_p, "the token service has no --issuer: it serves no OAuth requests");
        return NULL;
    }
    if (sb_token_http_request (job_p, request))
        return NULL;
    return request;
}

void
sb_oauth_token (sb_token_role_t *self, sb_worker_job_t *job)
{
    sb_http_request_t request;
    if (!s_request (self, &job, &request))
        return;
    sb_oauth_token_outcome_t *outcome = malloc (sizeof *outcome);
    s_exchange_t *exchange = calloc (1, sizeof *exchange);
    if (!outcome || !exchange) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    sb_oauth_token_validate (request.body, request.body_len,
                             sb_http_request_header (&request, "authorization"), outcome);
    if (outcome->kind == SB_OAUTH_REFUSED) {
        sb_log_info ("token_refused", "/token: %s: %s", sb_oauth_code_name (outcome->error.code),
                     outcome->error.description);
        sb_token_http_oauth_error (&job, &outcome->error);
        goto out;
    }
    if (*outcome->request.resource && strcmp (outcome->request.resource, self->resource) != 0) {
        sb_oauth_error_t error = { .code = SB_OAUTH_INVALID_TARGET, .status = 400 };
        snprintf (error.description, sizeof error.description, "%s",
                  "The resource is not the one this server issues tokens for (its /mcp URL).");
        sb_token_http_oauth_error (&job, &error);
        goto out;
    }
    exchange->self = self;
    exchange->token = outcome->request;
    sb_oauth_client_find_owned (self, job, exchange->token.client_id, s_on_client, exchange,
                                s_exchange_free);
    exchange = NULL;
out:
    s_exchange_free (exchange);
    if (outcome)
        sb_crypto_wipe (outcome, sizeof *outcome);
    free (outcome);
    sb_http_request_clear (&request);
}

void
sb_oauth_revoke (sb_token_role_t *self, sb_worker_job_t *job)
{
    sb_http_request_t request;
    if (!s_request (self, &job, &request))
        return;
    sb_oauth_revoke_outcome_t *outcome = malloc (sizeof *outcome);
    s_exchange_t *exchange = calloc (1, sizeof *exchange);
    if (!outcome || !exchange) {
        sb_worker_job_fail (&job, "out of memory");
        goto out;
    }
    sb_oauth_revoke_validate (request.body, request.body_len,
                              sb_http_request_header (&request, "authorization"), outcome);
    if (outcome->kind == SB_OAUTH_REFUSED) {
        sb_log_info ("revoke_refused", "/revoke: %s: %s", sb_oauth_code_name (outcome->error.code),
                     outcome->error.description);
        sb_token_http_oauth_error (&job, &outcome->error);
        goto out;
    }
    exchange->self = self;
    exchange->revoke = true;
    exchange->revocation = outcome->request;
    sb_oauth_client_find_owned (self, job, exchange->revocation.client_id, s_on_client, exchange,
                                s_exchange_free);
    exchange = NULL;
out:
    s_exchange_free (exchange);
    if (outcome)
        sb_crypto_wipe (outcome, sizeof *outcome);
    free (outcome);
    sb_http_request_clear (&request);
}
