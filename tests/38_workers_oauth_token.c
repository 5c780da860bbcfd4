/*  tests/38_workers_oauth_token.c — the token role's oauth/token,
    oauth/revoke and oauth/jwks jobs (workers/sb_oauth_token.c,
    sb_oauth_keys.c) as real sb-worker processes against fake brokers and
    the real test PostgreSQL. The test writes the rows the other modules
    would (tenant, user, clients, grants, codes by digest) and drives the
    jobs as the gateway relays them:

      - two workers starting together agree on one current signing key;
      - a code exchanged once: an EdDSA token that verifies against the key
        set the worker serves, with the brief's claims; twice: invalid_grant
        and the family the first exchange made is revoked;
      - a wrong verifier (the code is not spent), redirect URI, client or
        resource, an expired code, a disabled user, a revoked grant;
      - confidential clients: Basic, post, a wrong secret, the wrong
        method; a public client sending a secret;
      - refresh rotation, reuse (family revoked, refresh_reused audited),
        narrowing and widening the scope;
      - revocation (RFC 7009), unknown and access tokens answered 200;
      - malformed requests get their RFC error and change no row;
      - rotation by sb_oauth_keys_rotate on an in-process token worker:
        the key set lists both keys, the other workers sign with the new
        key within seconds, tokens under the old key still verify;
      - a key row whose seed does not open under the secret is not published;
      - a code, then a refresh token, sent to both workers at once: one
        exchange wins, the other is a replay that revokes the family.

    Tenants, clients and users of a run carry a prefix unique to it and are
    deleted at the end. */
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_attr.h"
#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_jwks.h"
#include "sb_token.h"
#include "sb_token_int.h"
#include "sb_token_role.h"

#define HEARTBEAT_MS    2000        /* long: the test blocks on SQL and on one worker while others wait */
#define WAIT_MS         10000       /* a RESULT, at most */
#define ROTATION_SEEN_MS (SB_OAUTH_KEY_CHECK_MS + 8000)   /* a worker signs with a new key by then */
#define ISSUER          "http://127.0.0.1:9"
#define RESOURCE        ISSUER "/mcp"
#define REDIRECT        "https://client.example/callback"
#define VERIFIER        "dBjftJeZ4CJP-wTUNqHLq5zmHeP5pZv3rKZlQq1TvwXyWz"
#define SCOPE_ALL       "mcp:tools mcp:write"

typedef struct {
    fake_broker_t *broker;      /* fake broker the worker registers with */
    pid_t pid;                  /* sb-worker --role token, or -1 in-process */
    sb_msg_t held;              /* a message that came while the test waited on another */
    bool holding;
} s_worker_t;

static s_worker_t s_a, s_b;     /* two token worker processes */
static s_worker_t s_inproc;     /* the in-process worker of test_rotation */
static s_worker_t *s_workers [3];
static char s_prefix [32];
static char *s_conninfo;
static char s_secret_path [256];
static char s_tenant [64], s_other_tenant [64];
static char s_pub [64], s_basic [64], s_post [64];     /* client IDs */
static long long s_user, s_other_user;
static int s_seq;

//  ---------------------------------------------------------------------
//  Workers (as in 38_workers_task: every broker is kept alive while the
//  test talks to one)

static void
s_keep_alive (s_worker_t *busy)
{
    for (size_t i = 0; i < sizeof s_workers / sizeof s_workers [0]; i++) {
        s_worker_t *w = s_workers [i];
        if (!w || w == busy || !w->broker || !w->broker->worker || w->holding)
            continue;
        if (fake_broker_recv (w->broker, &w->held, 0) == 0)
            w->holding = true;
    }
}

static int
s_recv (s_worker_t *w, sb_msg_t *msg, int timeout_ms)
{
    if (w->holding) {
        *msg = w->held;
        memset (&w->held, 0, sizeof w->held);
        w->holding = false;
        return 0;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        s_keep_alive (w);
        int64_t left = deadline - zclock_mono ();
        if (left < 0)
            return -1;
        if (fake_broker_recv (w->broker, msg, left > 50 ? 50 : (int) left) == 0)
            return 0;
    }
}

static void
s_register (s_worker_t *w)
{
    for (size_t i = 0; i < sizeof s_workers / sizeof s_workers [0]; i++)
        if (!s_workers [i]) {
            s_workers [i] = w;
            break;
        }
}

static void
s_unregister (s_worker_t *w)
{
    for (size_t i = 0; i < sizeof s_workers / sizeof s_workers [0]; i++)
        if (s_workers [i] == w)
            s_workers [i] = NULL;
    if (w->holding)
        sb_msg_reset (&w->held);
    w->holding = false;
}

static void
s_wait_ready (s_worker_t *w)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (s_recv (w, &msg, 30000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    assert_string_equal (msg.service, "token");
    sb_msg_reset (&msg);
}

static void
s_start (s_worker_t *w)
{
    s_register (w);
    w->broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (w->broker);
    char heartbeat [16], db [1024], migrations [512], secret [300];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    snprintf (secret, sizeof secret, "--secret-key-file=%s", s_secret_path);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", w->broker->endpoint,
        "--credit", "8", "--heartbeat-ms", heartbeat, db, migrations, secret,
        "--issuer", ISSUER, NULL
    };
    w->pid = sb_harness_spawn (argv, NULL);
    assert_true (w->pid > 0);
    s_wait_ready (w);
}

static bool
s_stop (s_worker_t *w)
{
    s_unregister (w);
    bool clean = true;
    if (w->pid > 0) {
        int wstatus = sb_harness_stop (w->pid);
        clean = WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0;
        w->pid = -1;
    }
    fake_broker_destroy (&w->broker);
    return clean;
}

//  Sends job `op` with `data` (may be NULL) to `w`; corr_id out.
static void
s_send (s_worker_t *w, const char *op, const char *data, char corr_id [32])
{
    snprintf (corr_id, 32, "c%d", ++s_seq);
    sb_job_t job = { .op = sb_unconst (op), .data = sb_unconst (data) };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    msg.command = SB_CMD_JOB;
    snprintf (msg.corr_id, sizeof msg.corr_id, "%s", corr_id);
    snprintf (msg.tenant, sizeof msg.tenant, "_oauth");
    msg.timeout_ms = WAIT_MS;
    msg.attempt = 1;
    msg.payload = payload;
    assert_non_null (w->broker->worker);
    assert_int_equal (sb_msg_send (w->broker->router, &msg, w->broker->worker), 0);
    sb_msg_reset (&msg);
}

//  The RESULT of `corr_id`: its status and result text (new).
static char *
s_wait (s_worker_t *w, const char *corr_id, sb_status_t *status)
{
    sb_msg_t msg = { 0 };
    if (s_recv (w, &msg, WAIT_MS))
        fail_msg ("no RESULT %s in %d ms", corr_id, WAIT_MS);
    if (msg.command != SB_CMD_RESULT || strcmp (msg.corr_id, corr_id) != 0 || !msg.payload)
        fail_msg ("expected RESULT %s, got %s %s", corr_id, sb_cmd_name (msg.command), msg.corr_id);
    sb_job_result_t result = { 0 };
    assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload),
                                            &result), 0);
    *status = msg.status;
    char *text = strdup (result.result);
    sb_job_result_clear (&result);
    sb_msg_reset (&msg);
    return text;
}

//  An HTTP answer: status, the body as JSON, and the response (headers).
typedef struct {
    int status;
    json_t *body;
    sb_http_response_t response;
} s_answer_t;

static void
s_answer_clear (s_answer_t *answer)
{
    json_decref (answer->body);
    sb_http_response_clear (&answer->response);
    memset (answer, 0, sizeof *answer);
}

//  POSTs `body` to `path` through worker `w` as the gateway relays it.
static s_answer_t
s_post_to (s_worker_t *w, const char *op, const char *path, const char *body,
           const char *authorization)
{
    sb_http_request_t request = {
        .method = "POST", .path = sb_unconst (path), .query = "", .body = sb_unconst (body),
        .body_len = strlen (body), .remote = "127.0.0.1"
    };
    request.headers [0] = (sb_http_header_t) { "content-type", "application/x-www-form-urlencoded" };
    request.header_count = 1;
    if (authorization) {
        request.headers [1] = (sb_http_header_t) { "authorization", sb_unconst (authorization) };
        request.header_count = 2;
    }
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    char corr_id [32];
    s_send (w, op, data, corr_id);
    free (data);
    sb_status_t status;
    char *text = s_wait (w, corr_id, &status);
    if (status != SB_STATUS_OK)
        fail_msg ("%s: status %s: %s", op, sb_status_name (status), text);
    s_answer_t answer = { 0 };
    const char *why = NULL;
    if (sb_http_response_decode (text, strlen (text), &answer.response, &why))
        fail_msg ("%s: the result is not an HTTP response (%s): %s", op, why, text);
    free (text);
    answer.status = answer.response.status;
    answer.body = json_loads (answer.response.body, 0, NULL);
    if (!answer.body)
        fail_msg ("%s: the body is not JSON: %s", op, answer.response.body);
    return answer;
}

static s_answer_t
s_token (s_worker_t *w, const char *body, const char *authorization)
{
    return s_post_to (w, "oauth/token", "/token", body, authorization);
}

static s_answer_t
s_revoke (s_worker_t *w, const char *body, const char *authorization)
{
    return s_post_to (w, "oauth/revoke", "/revoke", body, authorization);
}

static const char *
s_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    if (!value)
        fail_msg ("no string %s", key);
    return value;
}

//  Asserts an OAuth error answer and clears it.
static void
s_assert_error (s_answer_t answer, int status, const char *error)
{
    if (answer.status != status || !json_object_get (answer.body, "error")
    ||  strcmp (s_str (answer.body, "error"), error) != 0) {
        char *text = json_dumps (answer.body, JSON_COMPACT);
        fail_msg ("want %d %s, got %d %s", status, error, answer.status, text);
    }
    assert_non_null (json_object_get (answer.body, "error_description"));
    assert_string_equal (sb_http_response_header (&answer.response, "cache-control"), "no-store");
    s_answer_clear (&answer);
}

//  The key set worker `w` serves (parsed) and its text (new, optional).
static sb_jwks_t *
s_jwks (s_worker_t *w, char **text_p)
{
    char corr_id [32];
    s_send (w, "oauth/jwks", NULL, corr_id);
    sb_status_t status;
    char *text = s_wait (w, corr_id, &status);
    if (status != SB_STATUS_OK)
        fail_msg ("oauth/jwks: %s", text);
    char error [256];
    sb_jwks_t *jwks = sb_jwks_parse (text, strlen (text), error, sizeof error);
    if (!jwks)
        fail_msg ("oauth/jwks: %s: %s", error, text);
    if (text_p)
        *text_p = text;
    else
        free (text);
    return jwks;
}

//  ---------------------------------------------------------------------
//  The database

static PGconn *s_db;            /* system connection of the test */

static PGresult *
s_sql (const char *sql, int nparams, const char *const *params, ExecStatusType want)
{
    PGresult *res = PQexecParams (s_db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != want)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    return res;
}

static void
s_run (const char *sql, int nparams, const char *const *params)
{
    PQclear (s_sql (sql, nparams, params, PGRES_TUPLES_OK));
}

static long long
s_count (const char *sql, int nparams, const char *const *params)
{
    PGresult *res = s_sql (sql, nparams, params, PGRES_TUPLES_OK);
    long long count = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    return count;
}

//  Rows the token endpoint may change, as one text to compare.
static void
s_snapshot (char *out, size_t size)
{
    const char *params [] = { s_prefix };
    PGresult *res = s_sql (
        "SELECT (SELECT count(*) FROM oauth_codes WHERE used_at IS NOT NULL AND client_id LIKE $1 || '%')"
        "    || '/' || (SELECT count(*) FROM refresh_families WHERE client_id LIKE $1 || '%')"
        "    || '/' || (SELECT count(*) FROM refresh_families WHERE revoked_at IS NOT NULL"
        "                                                   AND client_id LIKE $1 || '%')"
        "    || '/' || (SELECT count(*) FROM refresh_tokens WHERE tenant_id LIKE $1 || '%')"
        "    || '/' || (SELECT count(*) FROM refresh_tokens WHERE rotated_at IS NOT NULL"
        "                                                 AND tenant_id LIKE $1 || '%')"
        "    || '/' || (SELECT count(*) FROM signing_keys)",
        1, params, PGRES_TUPLES_OK);
    snprintf (out, size, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
}

static void
s_sha256_hex (const char *text, char hex [65])
{
    uint8_t digest [32];
    sb_sha256 (text, strlen (text), digest);
    sb_hex_encode (digest, sizeof digest, hex);
}

//  A code for `client` of `user` in `tenant`, stored by digest as the
//  authorize module stores it, with VERIFIER's S256 challenge. `ttl_s` < 0
//  makes it expired already.
static void
s_code (char code [64], const char *tenant, long long user, const char *client, const char *scope,
        int ttl_s)
{
    uint8_t raw [32], digest [32];
    assert_int_equal (sb_crypto_random (raw, sizeof raw), 0);
    char *text = sb_base64url_encode (raw, sizeof raw);
    snprintf (code, 64, "%s", text);
    free (text);
    sb_sha256 (VERIFIER, strlen (VERIFIER), digest);
    char *challenge = sb_base64url_encode (digest, sizeof digest);
    char hash [65], user_text [24], ttl [16];
    s_sha256_hex (code, hash);
    snprintf (user_text, sizeof user_text, "%lld", user);
    snprintf (ttl, sizeof ttl, "%d", ttl_s);
    const char *params [] = { hash, tenant, user_text, client, REDIRECT, challenge, scope, ttl };
    PQclear (s_sql ("INSERT INTO oauth_codes (code_hash, tenant_id, user_id, client_id, redirect_uri,"
                    "                         code_challenge, scope, created_at, expires_at)"
                    " VALUES (decode ($1, 'hex'), $2, $3::bigint, $4, $5, $6, $7,"
                    "         now () - interval '10 minutes', now () + $8::int * interval '1 second')",
                    8, params, PGRES_COMMAND_OK));
    free (challenge);
}

//  The /token body exchanging `code` as public client `client`.
static void
s_code_body (char *body, size_t size, const char *code, const char *client, const char *verifier,
             const char *redirect)
{
    snprintf (body, size, "grant_type=authorization_code&code=%s&redirect_uri=%s"
              "&code_verifier=%s%s%s", code, redirect, verifier, client? "&client_id=": "",
              client? client: "");
}

//  Verifies `token` as a gateway does: EdDSA under `jwks`, iss ISSUER,
//  aud RESOURCE. Fills claims.
static sb_token_rc_t
s_verify_with (const sb_jwks_t *jwks, const char *token, sb_token_claims_t *claims)
{
    uint8_t hs256 [SB_MIN_TOKEN_KEY_LEN];
    assert_int_equal (sb_crypto_random (hs256, sizeof hs256), 0);
    sb_token_cache_t *cache = sb_token_cache_new (hs256, sizeof hs256, RESOURCE);
    assert_non_null (cache);
    assert_int_equal (sb_token_cache_set_issuer (cache, ISSUER), 0);
    sb_token_cache_set_jwks (cache, jwks);
    sb_token_rc_t rc = sb_token_cache_verify (cache, token, zclock_time () / 1000, claims);
    sb_token_cache_destroy (&cache);
    return rc;
}

//  Verifies `token` against the key set worker `w` serves.
static sb_token_rc_t
s_verify (s_worker_t *w, const char *token, sb_token_claims_t *claims)
{
    sb_jwks_t *jwks = s_jwks (w, NULL);
    sb_token_rc_t rc = s_verify_with (jwks, token, claims);
    sb_jwks_destroy (&jwks);
    return rc;
}

//  The kid in a token's header (into kid).
static void
s_kid_of (const char *token, char kid [SB_MAX_KID_LEN + 1])
{
    const char *dot = strchr (token, '.');
    assert_non_null (dot);
    uint8_t header [256];
    size_t len = 0;
    assert_int_equal (sb_base64url_decode (token, (size_t) (dot - token), header, sizeof header - 1,
                                           &len), 0);
    header [len] = 0;
    json_t *json = json_loads ((const char *) header, 0, NULL);
    assert_non_null (json);
    assert_string_equal (s_str (json, "alg"), "EdDSA");
    snprintf (kid, SB_MAX_KID_LEN + 1, "%s", s_str (json, "kid"));
    json_decref (json);
}

//  A code exchanged by public client s_pub: the answer's tokens (new).
static void
s_exchange (s_worker_t *w, const char *scope, char **access, char **refresh)
{
    char code [64], body [1024];
    s_code (code, s_tenant, s_user, s_pub, scope, 120);
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT);
    s_answer_t answer = s_token (w, body, NULL);
    if (answer.status != 200)
        fail_msg ("exchange: %d %s", answer.status, json_dumps (answer.body, 0));
    *access = strdup (s_str (answer.body, "access_token"));
    *refresh = strdup (s_str (answer.body, "refresh_token"));
    s_answer_clear (&answer);
}

//  ---------------------------------------------------------------------
//  Tests

//  Two workers asked for the key set at once agree on one current key.
static void
test_first_key (void **state)
{
    char a_id [32], b_id [32];
    s_send (&s_a, "oauth/jwks", NULL, a_id);
    s_send (&s_b, "oauth/jwks", NULL, b_id);
    sb_status_t status;
    char *a = s_wait (&s_a, a_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    char *b = s_wait (&s_b, b_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (a, b);
    json_t *set = json_loads (a, 0, NULL);
    assert_true (json_array_size (json_object_get (set, "keys")) >= 1);
    json_t *jwk = json_array_get (json_object_get (set, "keys"), 0);
    assert_string_equal (s_str (jwk, "kty"), "OKP");
    assert_string_equal (s_str (jwk, "crv"), "Ed25519");
    assert_null (json_object_get (jwk, "d"));
    json_decref (set);
    free (a);
    free (b);
    assert_int_equal (s_count ("SELECT count(*) FROM signing_keys WHERE retired_at IS NULL", 0, NULL), 1);
}

static void
test_code_once_twice (void **state)
{
    char code [64], body [1024], before [128], after [128];
    s_code (code, s_tenant, s_user, s_pub, SCOPE_ALL, 120);
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT);
    s_answer_t answer = s_token (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    assert_string_equal (sb_http_response_header (&answer.response, "cache-control"), "no-store");
    assert_string_equal (s_str (answer.body, "token_type"), "Bearer");
    assert_int_equal (json_integer_value (json_object_get (answer.body, "expires_in")),
                      SB_OAUTH_ACCESS_TTL_S);
    assert_string_equal (s_str (answer.body, "scope"), SCOPE_ALL);
    assert_int_equal (strlen (s_str (answer.body, "refresh_token")), 43);
    char *access = strdup (s_str (answer.body, "access_token"));
    char *refresh = strdup (s_str (answer.body, "refresh_token"));
    s_answer_clear (&answer);

    sb_token_claims_t claims;
    assert_int_equal (s_verify (&s_a, access, &claims), SB_TOKEN_OK);
    char subject [64];
    snprintf (subject, sizeof subject, "user:%lld", s_user);
    assert_string_equal (claims.issuer, ISSUER);
    assert_string_equal (claims.audience, RESOURCE);
    assert_string_equal (claims.tenant, s_tenant);
    assert_string_equal (claims.subject, subject);
    assert_string_equal (claims.client_id, s_pub);
    assert_string_equal (claims.scope, SCOPE_ALL);
    assert_int_equal (claims.expires_at - claims.issued_at, SB_OAUTH_ACCESS_TTL_S);
    //  …and against the other worker's key set too (one key, shared).
    assert_int_equal (s_verify (&s_b, access, &claims), SB_TOKEN_OK);

    //  Stored: the code spent, one family linked to it, its first token.
    char hash [65];
    s_sha256_hex (code, hash);
    const char *params [] = { hash };
    assert_int_equal (s_count ("SELECT count(*) FROM oauth_codes WHERE code_hash = decode ($1, 'hex')"
                               " AND used_at IS NOT NULL", 1, params), 1);
    assert_int_equal (s_count ("SELECT count(*) FROM refresh_families WHERE code_hash = decode ($1, 'hex')"
                               " AND revoked_at IS NULL", 1, params), 1);

    //  The same code again, on the other worker: refused, and what the
    //  first exchange issued is revoked.
    s_snapshot (before, sizeof before);
    s_assert_error (s_token (&s_b, body, NULL), 400, "invalid_grant");
    assert_int_equal (s_count ("SELECT count(*) FROM refresh_families WHERE code_hash = decode ($1, 'hex')"
                               " AND revoked_reason = 'reuse'", 1, params), 1);
    s_snapshot (after, sizeof after);
    assert_string_not_equal (before, after);
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s", refresh, s_pub);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    const char *tenant [] = { s_tenant };
    assert_true (s_count ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'token_refused'"
                          " AND detail->>'reason' = 'code_used'", 1, tenant) >= 1);
    assert_true (s_count ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'token_issued'",
                          1, tenant) >= 1);
    //  No secret in the audit log.
    const char *secrets [] = { s_tenant, code, refresh, VERIFIER };
    assert_int_equal (s_count ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND"
                               " (detail::text LIKE '%' || $2 || '%' OR detail::text LIKE '%' || $3 || '%'"
                               "  OR detail::text LIKE '%' || $4 || '%')", 4, secrets), 0);
    free (access);
    free (refresh);
}

//  Refusals of a code exchange: each is its RFC error and changes nothing.
static void
test_code_refusals (void **state)
{
    char code [64], body [2048], before [128], after [128], other [2048 + 256];
    s_code (code, s_tenant, s_user, s_pub, SCOPE_ALL, 120);
    s_snapshot (before, sizeof before);
    //  A wrong verifier (well formed): invalid_grant, the code not spent.
    s_code_body (body, sizeof body, code, s_pub, VERIFIER "x", REDIRECT);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    //  Another redirect URI.
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT "/other");
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    //  Another (known) client: invalid_grant; an unknown one: invalid_client.
    s_code_body (body, sizeof body, code, NULL, VERIFIER, REDIRECT);
    s_assert_error (s_token (&s_a, body, "Basic dGVzdA=="), 401, "invalid_client");
    snprintf (other, sizeof other, "%s&client_id=%s-nobody", body, s_prefix);
    s_assert_error (s_token (&s_a, other, NULL), 401, "invalid_client");
    snprintf (other, sizeof other, "%s&client_id=%s", body, s_post);
    snprintf (other + strlen (other), sizeof other - strlen (other), "&client_secret=post-secret");
    s_assert_error (s_token (&s_a, other, NULL), 400, "invalid_grant");
    //  A resource that is not this server's.
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT);
    snprintf (other, sizeof other, "%s&resource=https://elsewhere.example/mcp", body);
    s_assert_error (s_token (&s_a, other, NULL), 400, "invalid_target");
    s_snapshot (after, sizeof after);
    assert_string_equal (before, after);
    const char *tenant [] = { s_tenant };
    assert_true (s_count ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = 'token_refused'"
                          " AND detail->>'reason' IN ('code_pkce', 'code_redirect_uri', 'code_client')",
                          1, tenant) >= 3);

    //  The same code, right this time (and naming the resource): it was
    //  not spent by the refusals.
    snprintf (other, sizeof other, "%s&resource=%s", body, RESOURCE);
    s_answer_t answer = s_token (&s_a, other, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);

    //  An expired code.
    s_code (code, s_tenant, s_user, s_pub, SCOPE_ALL, -1);
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT);
    s_snapshot (before, sizeof before);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    //  A code never issued.
    s_code_body (body, sizeof body, "bm90LWEtY29kZQ", s_pub, VERIFIER, REDIRECT);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    s_snapshot (after, sizeof after);
    assert_string_equal (before, after);
}

//  A user disabled, or a grant revoked: invalid_grant, for codes and
//  refresh tokens alike.
static void
test_user_and_grant (void **state)
{
    char *access, *refresh, code [64], body [1024];
    s_exchange (&s_a, SCOPE_ALL, &access, &refresh);
    char user [24];
    snprintf (user, sizeof user, "%lld", s_user);
    const char *params [] = { s_tenant, user, s_pub };
    s_run ("WITH u AS (UPDATE users SET disabled_at = now () WHERE tenant_id = $1 AND id = $2::bigint"
           " RETURNING 1) SELECT count(*) FROM u", 2, params);
    s_code (code, s_tenant, s_user, s_pub, SCOPE_ALL, 120);
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    char refresh_body [512];
    snprintf (refresh_body, sizeof refresh_body, "grant_type=refresh_token&refresh_token=%s&client_id=%s",
              refresh, s_pub);
    s_assert_error (s_token (&s_a, refresh_body, NULL), 400, "invalid_grant");
    s_run ("WITH u AS (UPDATE users SET disabled_at = NULL WHERE tenant_id = $1 AND id = $2::bigint"
           " RETURNING 1) SELECT count(*) FROM u", 2, params);
    s_run ("WITH g AS (UPDATE oauth_grants SET revoked_at = now () WHERE tenant_id = $1"
           " AND user_id = $2::bigint AND client_id = $3 RETURNING 1) SELECT count(*) FROM g", 3, params);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    s_assert_error (s_token (&s_a, refresh_body, NULL), 400, "invalid_grant");
    s_run ("WITH g AS (UPDATE oauth_grants SET revoked_at = NULL WHERE tenant_id = $1"
           " AND user_id = $2::bigint AND client_id = $3 RETURNING 1) SELECT count(*) FROM g", 3, params);
    //  Both work again: the refusals spent nothing.
    s_answer_t answer = s_token (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    answer = s_token (&s_a, refresh_body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    free (access);
    free (refresh);
}

//  Confidential clients authenticate with their registered method.
static void
test_confidential (void **state)
{
    char code [64], body [1024], with [1200], before [128], after [128];
    char basic [256];
    //  Basic: base64 ("<id>:basic-secret")
    char credentials [128];
    snprintf (credentials, sizeof credentials, "%s:basic-secret", s_basic);
    char *b64 = sb_base64url_encode ((const uint8_t *) credentials, strlen (credentials));
    //  Standard base64 with padding: the id and secret here use no '-' '_' '+' '/'.
    size_t len = strlen (b64);
    snprintf (basic, sizeof basic, "Basic %s%s", b64, len % 4 == 2? "==": len % 4 == 3? "=": "");
    for (char *p = basic; *p; p++)
        if (*p == '-') *p = '+'; else if (*p == '_') *p = '/';
    free (b64);

    s_code (code, s_tenant, s_user, s_basic, SCOPE_ALL, 120);
    s_code_body (body, sizeof body, code, NULL, VERIFIER, REDIRECT);
    s_snapshot (before, sizeof before);
    //  The right client, the wrong method (post), and a wrong secret.
    snprintf (with, sizeof with, "%s&client_id=%s&client_secret=basic-secret", body, s_basic);
    s_assert_error (s_token (&s_a, with, NULL), 401, "invalid_client");
    char wrong [256];
    snprintf (credentials, sizeof credentials, "%s:wrong", s_basic);
    b64 = sb_base64url_encode ((const uint8_t *) credentials, strlen (credentials));
    len = strlen (b64);
    snprintf (wrong, sizeof wrong, "Basic %s%s", b64, len % 4 == 2? "==": len % 4 == 3? "=": "");
    for (char *p = wrong; *p; p++)
        if (*p == '-') *p = '+'; else if (*p == '_') *p = '/';
    free (b64);
    s_answer_t answer = s_token (&s_a, body, wrong);
    assert_non_null (sb_http_response_header (&answer.response, "www-authenticate"));
    s_assert_error (answer, 401, "invalid_client");
    //  Without any authentication, as if public.
    snprintf (with, sizeof with, "%s&client_id=%s", body, s_basic);
    s_assert_error (s_token (&s_a, with, NULL), 401, "invalid_client");
    s_snapshot (after, sizeof after);
    assert_string_equal (before, after);
    //  Right: Basic.
    answer = s_token (&s_a, body, basic);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);

    //  client_secret_post, and a public client that sends a secret.
    s_code (code, s_tenant, s_user, s_post, SCOPE_ALL, 120);
    s_code_body (body, sizeof body, code, NULL, VERIFIER, REDIRECT);
    snprintf (with, sizeof with, "%s&client_id=%s&client_secret=wrong", body, s_post);
    s_assert_error (s_token (&s_a, with, NULL), 401, "invalid_client");
    snprintf (with, sizeof with, "%s&client_id=%s&client_secret=post-secret", body, s_post);
    answer = s_token (&s_a, with, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    s_code (code, s_tenant, s_user, s_pub, SCOPE_ALL, 120);
    s_code_body (body, sizeof body, code, NULL, VERIFIER, REDIRECT);
    snprintf (with, sizeof with, "%s&client_id=%s&client_secret=anything", body, s_pub);
    s_assert_error (s_token (&s_a, with, NULL), 401, "invalid_client");
}

//  Rotation on every use; reuse revokes the family; scope narrows only.
static void
test_refresh (void **state)
{
    char *access, *first, body [1024], before [128], after [128];
    s_exchange (&s_a, SCOPE_ALL, &access, &first);
    //  Narrowing: the access token gets the narrower scope.
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s&scope=mcp:tools",
              first, s_pub);
    s_answer_t answer = s_token (&s_b, body, NULL);
    assert_int_equal (answer.status, 200);
    assert_string_equal (s_str (answer.body, "scope"), "mcp:tools");
    char *second = strdup (s_str (answer.body, "refresh_token"));
    assert_string_not_equal (second, first);
    sb_token_claims_t claims;
    assert_int_equal (s_verify (&s_a, s_str (answer.body, "access_token"), &claims), SB_TOKEN_OK);
    assert_string_equal (claims.scope, "mcp:tools");
    s_answer_clear (&answer);

    //  Widening (beyond the grant), another client: refused, nothing changes.
    s_snapshot (before, sizeof before);
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s"
              "&scope=mcp:tools+mcp:admin", second, s_pub);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_scope");
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s"
              "&client_secret=post-secret", second, s_post);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    s_snapshot (after, sizeof after);
    assert_string_equal (before, after);

    //  The family keeps its scope: the second token still gets all of it.
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s", second, s_pub);
    answer = s_token (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    assert_string_equal (s_str (answer.body, "scope"), SCOPE_ALL);
    char *third = strdup (s_str (answer.body, "refresh_token"));
    s_answer_clear (&answer);

    //  The first token again: reuse. The family is revoked: the third too.
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s", first, s_pub);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    char hash [65];
    s_sha256_hex (third, hash);
    const char *params [] = { hash };
    assert_int_equal (s_count ("SELECT count(*) FROM refresh_families f, refresh_tokens t"
                               " WHERE t.token_hash = decode ($1, 'hex') AND f.id = t.family_id"
                               "   AND f.revoked_reason = 'reuse'", 1, params), 1);
    const char *tenant [] = { s_tenant };
    assert_true (s_count ("SELECT count(*) FROM audit_log WHERE tenant_id = $1"
                          " AND action = 'refresh_reused'", 1, tenant) >= 1);
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s", third, s_pub);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    free (access);
    free (first);
    free (second);
    free (third);
}

static void
test_revoke (void **state)
{
    char *access, *refresh, body [1024], hash [65];
    s_exchange (&s_a, SCOPE_ALL, &access, &refresh);
    s_sha256_hex (refresh, hash);
    const char *params [] = { hash };
    const char *family_revoked = "SELECT count(*) FROM refresh_families f, refresh_tokens t"
                                 " WHERE t.token_hash = decode ($1, 'hex') AND f.id = t.family_id"
                                 "   AND f.revoked_reason = 'revocation'";
    //  Another client's revocation: 200, and nothing revoked.
    snprintf (body, sizeof body, "token=%s&client_id=%s&client_secret=post-secret", refresh, s_post);
    s_answer_t answer = s_revoke (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    assert_int_equal (s_count (family_revoked, 1, params), 0);
    //  Missing token; unauthenticated confidential client.
    snprintf (body, sizeof body, "client_id=%s", s_pub);
    s_assert_error (s_revoke (&s_a, body, NULL), 400, "invalid_request");
    snprintf (body, sizeof body, "token=%s&client_id=%s", refresh, s_post);
    s_assert_error (s_revoke (&s_a, body, NULL), 401, "invalid_client");
    assert_int_equal (s_count (family_revoked, 1, params), 0);
    //  The access token (cannot be revoked: short-lived) and an unknown
    //  token: 200, nothing changes.
    snprintf (body, sizeof body, "token=%s&token_type_hint=access_token&client_id=%s", access, s_pub);
    answer = s_revoke (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    snprintf (body, sizeof body, "token=no-such-token&client_id=%s", s_pub);
    answer = s_revoke (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    assert_int_equal (s_count (family_revoked, 1, params), 0);
    //  The client's own refresh token: its family is revoked.
    snprintf (body, sizeof body, "token=%s&token_type_hint=refresh_token&client_id=%s", refresh, s_pub);
    answer = s_revoke (&s_b, body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    assert_int_equal (s_count (family_revoked, 1, params), 1);
    const char *tenant [] = { s_tenant };
    assert_true (s_count ("SELECT count(*) FROM audit_log WHERE tenant_id = $1"
                          " AND action = 'token_revoked'", 1, tenant) >= 1);
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s", refresh, s_pub);
    s_assert_error (s_token (&s_a, body, NULL), 400, "invalid_grant");
    //  Revoking it again: still 200.
    snprintf (body, sizeof body, "token=%s&client_id=%s", refresh, s_pub);
    answer = s_revoke (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
    free (access);
    free (refresh);
}

//  Malformed requests: the RFC's error, and no row changes.
static void
test_malformed (void **state)
{
    char code [64], before [128], after [128];
    s_code (code, s_tenant, s_user, s_pub, SCOPE_ALL, 120);
    static const struct {
        const char *form;       /* @C is the code, @P the public client */
        int status;
        const char *error;
    } cases [] = {
        { "code=@C&client_id=@P", 400, "invalid_request" },
        { "grant_type=password&code=@C&client_id=@P", 400, "unsupported_grant_type" },
        { "grant_type=authorization_code&code=@C&redirect_uri=" REDIRECT "&code_verifier=" VERIFIER,
          401, "invalid_client" },
        { "grant_type=authorization_code&code=@C&redirect_uri=" REDIRECT "&client_id=@P",
          400, "invalid_request" },
        { "grant_type=authorization_code&code=@C&redirect_uri=" REDIRECT "&code_verifier=short"
          "&client_id=@P", 400, "invalid_request" },
        { "grant_type=authorization_code&code=@C&code=@C&redirect_uri=" REDIRECT
          "&code_verifier=" VERIFIER "&client_id=@P", 400, "invalid_request" },
        { "grant_type=authorization_code&code=@C&redirect_uri=" REDIRECT "&code_verifier=" VERIFIER
          "&client_id=@P&resource=not-absolute", 400, "invalid_target" },
        { "grant_type=refresh_token&client_id=@P", 400, "invalid_request" },
        { "grant_type=refresh_token&refresh_token=x&scope=%22bad%22&client_id=@P",
          400, "invalid_scope" },
        { "grant_type=authorization_code&code=@C%zz", 400, "invalid_request" },
    };
    s_snapshot (before, sizeof before);
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char body [2048];
        size_t at = 0;
        for (const char *p = cases [i].form; *p && at + 128 < sizeof body; p++) {
            const char *with = p [0] == '@' && p [1] == 'C'? code: p [0] == '@' && p [1] == 'P'? s_pub: NULL;
            if (with) {
                at += (size_t) snprintf (body + at, sizeof body - at, "%s", with);
                p++;
            }
            else
                body [at++] = *p;
        }
        body [at] = 0;
        s_assert_error (s_token (&s_a, body, NULL), cases [i].status, cases [i].error);
    }
    //  A client ID of 199 bytes that nobody registered: unknown.
    {
        char body [1024], id [200];
        memset (id, 'c', sizeof id - 1);
        id [sizeof id - 1] = 0;
        s_code_body (body, sizeof body, code, id, VERIFIER, REDIRECT);
        s_assert_error (s_token (&s_a, body, NULL), 401, "invalid_client");
    }
    //  Basic with a broken header.
    s_assert_error (s_token (&s_a, "grant_type=refresh_token&refresh_token=x", "Basic !!!"),
                    401, "invalid_client");
    s_snapshot (after, sizeof after);
    assert_string_equal (before, after);
    //  The code still works after all that.
    char body [1024];
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT);
    s_answer_t answer = s_token (&s_a, body, NULL);
    assert_int_equal (answer.status, 200);
    s_answer_clear (&answer);
}

//  The in-process token worker of test_rotation: the token role, plus two
//  ops of the test's own — rotate the key with sb_oauth_keys_rotate (what
//  the admin API will call) and stop.
static sb_token_role_t *s_inproc_role;
static sb_worker_t *s_inproc_worker;

static void
s_on_rotated (sb_worker_job_t **job_p, const char *kid, const char *retired, const char *error,
              void *arg)
{
    if (error) {
        sb_worker_job_fail (job_p, error);
        return;
    }
    char text [256];
    snprintf (text, sizeof text, "{\"kid\":\"%s\",\"retired\":\"%s\"}", kid, retired? retired: "");
    sb_worker_job_done (job_p, SB_STATUS_OK, text);
}

static void
s_inproc_start (void *state, sb_worker_job_t *job)
{
    const char *op = sb_worker_job_spec (job)->op;
    if (strcmp (op, "test/rotate") == 0)
        sb_oauth_keys_rotate (state, job, s_on_rotated, NULL, NULL);
    else
    if (strcmp (op, "test/stop") == 0) {
        sb_worker_stop (sb_worker_job_worker (job));
        sb_worker_job_done (&job, SB_STATUS_OK, "{}");
    }
    else
        sb_token_role.start (state, job);
}

static void
s_inproc_abandon (void *state, sb_worker_job_t *job)
{
    sb_token_role.abandon (state, job);
}

static const sb_worker_role_t s_inproc_ops = { s_inproc_start, s_inproc_abandon };

static void *
s_inproc_run (void *arg)
{
    return (void *) (intptr_t) sb_worker_run (s_inproc_worker);
}

static void
test_rotation (void **state)
{
    //  Before: the current key, and a token signed with it.
    sb_jwks_t *jwks = s_jwks (&s_a, NULL);
    char *access, *refresh, old_kid [SB_MAX_KID_LEN + 1], new_kid [SB_MAX_KID_LEN + 1];
    s_exchange (&s_a, SCOPE_ALL, &access, &refresh);
    s_kid_of (access, old_kid);
    assert_non_null (sb_jwks_find (jwks, old_kid));
    sb_jwks_destroy (&jwks);

    //  The in-process worker rotates.
    s_register (&s_inproc);
    s_inproc.pid = -1;
    s_inproc.broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (s_inproc.broker);
    s_inproc_worker = sb_worker_new (s_inproc.broker->endpoint, "token", 4, HEARTBEAT_MS);
    assert_non_null (s_inproc_worker);
    char migrations [512];
    snprintf (migrations, sizeof migrations, "%s/db/migrations", SB_SOURCE_DIR);
    sb_token_config_t config = {
        .conninfo = s_conninfo, .migrations_dir = migrations, .issuer = ISSUER,
        .secret_key_file = s_secret_path, .hash_threads = 1
    };
    s_inproc_role = sb_token_role_new (s_inproc_worker, &config);
    assert_non_null (s_inproc_role);
    sb_worker_set_role (s_inproc_worker, &s_inproc_ops, s_inproc_role);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_inproc_run, NULL), 0);
    s_wait_ready (&s_inproc);
    char corr_id [32];
    s_send (&s_inproc, "test/rotate", NULL, corr_id);
    sb_status_t status;
    char *text = s_wait (&s_inproc, corr_id, &status);
    if (status != SB_STATUS_OK)
        fail_msg ("rotate: %s", text);
    json_t *rotated = json_loads (text, 0, NULL);
    free (text);
    snprintf (new_kid, sizeof new_kid, "%s", s_str (rotated, "kid"));
    assert_string_equal (s_str (rotated, "retired"), old_kid);
    assert_string_not_equal (new_kid, old_kid);
    json_decref (rotated);
    //  The rotating worker signs with the new key at once.
    char *access2, *refresh2, kid [SB_MAX_KID_LEN + 1];
    s_exchange (&s_inproc, SCOPE_ALL, &access2, &refresh2);
    s_kid_of (access2, kid);
    assert_string_equal (kid, new_kid);
    s_send (&s_inproc, "test/stop", NULL, corr_id);
    free (s_wait (&s_inproc, corr_id, &status));
    void *rc = NULL;
    assert_int_equal (pthread_join (thread, &rc), 0);
    assert_int_equal ((intptr_t) rc, 0);
    s_unregister (&s_inproc);
    sb_token_role_destroy (&s_inproc_role);
    sb_worker_destroy (&s_inproc_worker);
    fake_broker_destroy (&s_inproc.broker);

    //  Worker A's key set lists both, current first; the old token and
    //  the new one verify against it.
    char *set_text = NULL;
    jwks = s_jwks (&s_a, &set_text);
    assert_true (sb_jwks_count (jwks) >= 2);
    assert_non_null (sb_jwks_find (jwks, old_kid));
    assert_non_null (sb_jwks_find (jwks, new_kid));
    json_t *set = json_loads (set_text, 0, NULL);
    assert_string_equal (s_str (json_array_get (json_object_get (set, "keys"), 0), "kid"), new_kid);
    json_decref (set);
    free (set_text);
    sb_token_claims_t claims;
    assert_int_equal (s_verify_with (jwks, access, &claims), SB_TOKEN_OK);
    assert_int_equal (s_verify_with (jwks, access2, &claims), SB_TOKEN_OK);
    sb_jwks_destroy (&jwks);

    //  Worker B (which had read the old key) signs with the new one within
    //  SB_OAUTH_KEY_CHECK_MS: refresh until its tokens name the new kid.
    int64_t deadline = zclock_mono () + ROTATION_SEEN_MS;
    bool seen = false;
    while (!seen && zclock_mono () < deadline) {
        char body [512];
        snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s",
                  refresh, s_pub);
        s_answer_t answer = s_token (&s_b, body, NULL);
        assert_int_equal (answer.status, 200);
        free (refresh);
        refresh = strdup (s_str (answer.body, "refresh_token"));
        s_kid_of (s_str (answer.body, "access_token"), kid);
        seen = strcmp (kid, new_kid) == 0;
        if (!seen)
            assert_string_equal (kid, old_kid);
        s_answer_clear (&answer);
        if (!seen)
            sb_harness_pause_ms (250);
    }
    assert_true (seen);
    free (access);
    free (refresh);
    free (access2);
    free (refresh2);
}

//  Sends POST /token `body` to `w` without waiting (corr_id out).
static void
s_token_send (s_worker_t *w, const char *body, char corr_id [32])
{
    sb_http_request_t request = {
        .method = "POST", .path = "/token", .query = "", .body = sb_unconst (body),
        .body_len = strlen (body), .remote = "127.0.0.1"
    };
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    s_send (w, "oauth/token", data, corr_id);
    free (data);
}

//  The HTTP status of the /token answer to `corr_id`.
static int
s_token_status (s_worker_t *w, const char *corr_id)
{
    sb_status_t status;
    char *text = s_wait (w, corr_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    sb_http_response_t response = { 0 };
    const char *why = NULL;
    assert_int_equal (sb_http_response_decode (text, strlen (text), &response, &why), 0);
    int code = response.status;
    sb_http_response_clear (&response);
    free (text);
    return code;
}

//  The same code, and then the same refresh token, sent to both workers at
//  once: one exchange wins, the other is a replay (reuse) and revokes the
//  family the winner got.
static void
test_races (void **state)
{
    char code [64], body [1024], a_id [32], b_id [32], hash [65];
    s_code (code, s_tenant, s_user, s_pub, SCOPE_ALL, 120);
    s_code_body (body, sizeof body, code, s_pub, VERIFIER, REDIRECT);
    s_token_send (&s_a, body, a_id);
    s_token_send (&s_b, body, b_id);
    int a = s_token_status (&s_a, a_id), b = s_token_status (&s_b, b_id);
    assert_true ((a == 200 && b == 400) || (a == 400 && b == 200));
    s_sha256_hex (code, hash);
    const char *params [] = { hash };
    assert_int_equal (s_count ("SELECT count(*) FROM refresh_families WHERE code_hash = decode ($1, 'hex')"
                               " AND revoked_reason = 'reuse'", 1, params), 1);

    char *access, *refresh;
    s_exchange (&s_a, SCOPE_ALL, &access, &refresh);
    snprintf (body, sizeof body, "grant_type=refresh_token&refresh_token=%s&client_id=%s", refresh, s_pub);
    s_token_send (&s_a, body, a_id);
    s_token_send (&s_b, body, b_id);
    a = s_token_status (&s_a, a_id);
    b = s_token_status (&s_b, b_id);
    assert_true ((a == 200 && b == 400) || (a == 400 && b == 200));
    s_sha256_hex (refresh, hash);
    assert_int_equal (s_count ("SELECT count(*) FROM refresh_families f, refresh_tokens t"
                               " WHERE t.token_hash = decode ($1, 'hex') AND f.id = t.family_id"
                               "   AND f.revoked_reason = 'reuse'", 1, params), 1);
    //  One successor was made, and it is dead with its family.
    assert_int_equal (s_count ("SELECT count(*) FROM refresh_tokens t, refresh_tokens o"
                               " WHERE o.token_hash = decode ($1, 'hex') AND t.family_id = o.family_id",
                               1, params), 2);
    free (access);
    free (refresh);
}

//  A key row written by someone without the secret (database access only)
//  is never published: its seed does not open under the workers' key.
static void
test_forged_key (void **state)
{
    char kid [48];
    snprintf (kid, sizeof kid, "forged-%s", s_prefix);
    const char *params [] = { kid };
    s_run ("WITH k AS (INSERT INTO signing_keys (kid, public_key, sealed_seed, created_at, retired_at)"
           " VALUES ($1, decode (repeat ('ab', 32), 'hex'), decode (repeat ('cd', 60), 'hex'),"
           "         now () - interval '1 minute', now ()) RETURNING 1) SELECT count(*) FROM k",
           1, params);
    char *text = NULL;
    sb_jwks_t *jwks = s_jwks (&s_a, &text);
    assert_null (sb_jwks_find (jwks, kid));
    assert_true (sb_jwks_count (jwks) >= 1);
    assert_null (strstr (text, "forged-"));
    sb_jwks_destroy (&jwks);
    free (text);
    s_run ("WITH k AS (DELETE FROM signing_keys WHERE kid = $1 RETURNING 1) SELECT count(*) FROM k",
           1, params);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static void
s_insert_client (const char *id, const char *method, const char *secret)
{
    char hash [65];
    if (secret)
        s_sha256_hex (secret, hash);
    const char *params [] = { id, method, secret? hash: NULL };
    PQclear (s_sql ("INSERT INTO oauth_clients (client_id, kind, redirect_uris,"
                    "                           token_endpoint_auth_method, client_secret_hash)"
                    " VALUES ($1, 'registered', ARRAY['" REDIRECT "'], $2, decode ($3, 'hex'))",
                    3, params, PGRES_COMMAND_OK));
}

static long long
s_insert_user (const char *tenant, const char *email)
{
    const char *params [] = { tenant, email };
    PQclear (s_sql ("INSERT INTO tenants (id, name) VALUES ($1, $1) ON CONFLICT (id) DO NOTHING",
                    1, params, PGRES_COMMAND_OK));
    PGresult *res = s_sql ("INSERT INTO users (tenant_id, email, password_hash)"
                           " VALUES ($1, $2, '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA') RETURNING id",
                           2, params, PGRES_TUPLES_OK);
    long long id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    const char *clients [] = { s_pub, s_basic, s_post };
    for (int i = 0; i < 3; i++) {
        char user [24];
        snprintf (user, sizeof user, "%lld", id);
        const char *grant [] = { tenant, user, clients [i] };
        PQclear (s_sql ("INSERT INTO oauth_grants (tenant_id, user_id, client_id, scope)"
                        " VALUES ($1, $2::bigint, $3, '" SCOPE_ALL "')", 3, grant, PGRES_COMMAND_OK));
    }
    return id;
}

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "o20t%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    snprintf (s_tenant, sizeof s_tenant, "%s-a", s_prefix);
    snprintf (s_other_tenant, sizeof s_other_tenant, "%s-b", s_prefix);
    snprintf (s_pub, sizeof s_pub, "%s-public", s_prefix);
    snprintf (s_basic, sizeof s_basic, "%s-basic", s_prefix);
    snprintf (s_post, sizeof s_post, "%s-post", s_prefix);
    snprintf (s_secret_path, sizeof s_secret_path, "/tmp/sb-oauth-secret-%d", (int) getpid ());
    FILE *file = fopen (s_secret_path, "w");
    if (!file)
        return -1;
    fprintf (file, "test-secret-%08x-0123456789abcdefghijklmnop\n", (unsigned) zclock_time ());
    fclose (file);
    s_start (&s_a);
    s_start (&s_b);
    s_db = PQconnectdb (s_conninfo);
    if (PQstatus (s_db) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (s_db, "SELECT set_config ('switchboard.system', 'on', false)"));
    s_insert_client (s_pub, "none", NULL);
    s_insert_client (s_basic, "client_secret_basic", "basic-secret");
    s_insert_client (s_post, "client_secret_post", "post-secret");
    s_user = s_insert_user (s_tenant, "alice@example.com");
    s_other_user = s_insert_user (s_other_tenant, "bob@example.com");
    return 0;
}

static int
s_teardown (void **state)
{
    bool clean = s_stop (&s_a);
    clean = s_stop (&s_b) && clean;
    if (!clean)
        fprintf (stderr, "a token worker did not exit cleanly\n");
    int rc = -1;
    if (s_db && PQstatus (s_db) == CONNECTION_OK) {
        char pattern [48];
        snprintf (pattern, sizeof pattern, "%s-%%", s_prefix);
        const char *params [] = { pattern };
        //  Deleting the tenants deletes their rows; the clients go by name.
        PGresult *res = PQexecParams (s_db, "DELETE FROM tenants WHERE id LIKE $1",
                                      1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear (res);
        res = PQexecParams (s_db, "DELETE FROM oauth_clients WHERE client_id LIKE $1",
                            1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK ? rc : -1;
        PQclear (res);
    }
    PQfinish (s_db);
    unlink (s_secret_path);
    free (s_conninfo);
    return clean ? rc : -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_first_key),
        cmocka_unit_test (test_code_once_twice),
        cmocka_unit_test (test_code_refusals),
        cmocka_unit_test (test_user_and_grant),
        cmocka_unit_test (test_confidential),
        cmocka_unit_test (test_refresh),
        cmocka_unit_test (test_revoke),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_rotation),
        cmocka_unit_test (test_forged_key),
        cmocka_unit_test (test_races),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
