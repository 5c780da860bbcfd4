/*  tests/38_workers_authorize.c — the token worker's oauth/authorize op
    (workers/sb_oauth_authorize.c) as a real sb-worker --role token process
    against a fake broker and the real test PostgreSQL, driven by HTTP jobs
    as the gateway sends them:

      - GET with a valid request: the page (200), its security headers, the
        CSRF cookie, the client's name escaped, the request as hidden
        fields, one line per scope;
      - every error that goes back to the client: 302 with error, state
        and iss; the errors that must not (client, redirect URI, a
        malformed query): a 400 page, no Location;
      - POST without the CSRF cookie, with a wrong field, with another
        client's field: a 400 page;
      - Deny: 302 error=access_denied with state and iss;
      - an http issuer on loopback: the cookie without Secure or __Host-;
      - Allow with the right password: 302 with a code whose SHA-256 is in
        oauth_codes with the tenant, user, challenge, redirect URI, scope
        and a 120 s expiry; the grant and the audit rows; and a ping
        answered while that password hashed (the hash runs off the loop);
      - a wrong password, an unknown user, a disabled user: the page again
        with one sentence, audited under the tenant; the per-email brake;
      - a sign-in cancelled while it hashes: cancelled at once, and the
        worker keeps serving (and exits cleanly at the end).

    Few sign-ins: each verifies an Argon2id hash (~0.35 s). Tenants and
    clients of this run start with a prefix unique to it; deleted at the end. */
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_password.h"

#define HEARTBEAT_MS    500
#define WAIT_MS         20000       /* a RESULT, at most (a hash on a busy machine) */
#define ISSUER          "https://auth.example.test"
#define REDIRECT        "https://app.example.com/cb"
#define PASSWORD        "correct horse battery"
#define CHALLENGE       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
#define CLIENT_NAME     "Acme <Bot> & \"Co\""

static fake_broker_t *s_broker;     /* the fake broker the worker registers with */
static pid_t s_pid = -1;            /* the sb-worker --role token process */
static char *s_conninfo;            /* the test PostgreSQL */
static char s_prefix [32];          /* tenants and clients of this run start with it */
static char s_tenant [64];          /* the tenant of this run */
static char s_client [64];          /* its client */
static char s_user_id [24];         /* alice's users.id */
static char s_secret_path [64];     /* --secret-key-file */
static int s_seq;                   /* numbers correlation ids */

//  ---------------------------------------------------------------------
//  The database

static PGconn *
s_pg (void)
{
    PGconn *conn = PQconnectdb (s_conninfo);
    assert_int_equal (PQstatus (conn), CONNECTION_OK);
    PQclear (PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)"));
    return conn;
}

//  Runs `sql` with `params`; fails unless it succeeds. The result (caller clears).
static PGresult *
s_sql (PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams (conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus (res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    return res;
}

//  Audit rows of the tenant with `action` and `actor`.
static int
s_audit_count (const char *action, const char *actor)
{
    PGconn *conn = s_pg ();
    const char *params [] = { s_tenant, action, actor };
    PGresult *res = s_sql (conn, "SELECT count (*) FROM audit_log WHERE tenant_id = $1 "
                                 "AND action = $2 AND actor = $3", 3, params);
    int count = (int) strtol (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    PQfinish (conn);
    return count;
}

//  ---------------------------------------------------------------------
//  HTTP jobs

//  Sends oauth/authorize with an HTTP request; returns its corr_id.
static void
s_send (const char *method, const char *query, const char *body, const char *cookie,
        uint32_t timeout_ms, char corr_id [32])
{
    sb_http_request_t request = { 0 };
    request.method = strdup (method);
    request.path = strdup ("/authorize");
    request.query = strdup (query? query: "");
    request.body = strdup (body? body: "");
    request.body_len = strlen (request.body);
    request.remote = strdup ("203.0.113.7");
    if (body)
        assert_int_equal (sb_http_request_add_header (&request, "content-type",
                                                      "application/x-www-form-urlencoded"), 0);
    if (cookie)
        assert_int_equal (sb_http_request_add_header (&request, "cookie", cookie), 0);
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    sb_http_request_clear (&request);
    sb_job_t job = { .op = "oauth/authorize", .data = data };
    zframe_t *payload = sb_job_encode (&job);
    free (data);
    assert_non_null (payload);
    snprintf (corr_id, 32, "a%d", ++s_seq);
    assert_int_equal (fake_broker_send_job (s_broker, corr_id, timeout_ms, 0, &payload), 0);
}

//  The HTTP response of `corr_id` (the next RESULT must be it).
static void
s_wait (const char *corr_id, sb_http_response_t *response)
{
    sb_status_t status;
    char *json = NULL;
    if (fake_broker_result (s_broker, corr_id, WAIT_MS, &status, &json))
        fail_msg ("no RESULT %s", corr_id);
    if (status != SB_STATUS_OK)
        fail_msg ("%s: status %s: %s", corr_id, sb_status_name (status), json);
    const char *why = NULL;
    memset (response, 0, sizeof *response);
    if (sb_http_response_decode (json, strlen (json), response, &why))
        fail_msg ("%s: %s", why, json);
    free (json);
}

static void
s_http (const char *method, const char *query, const char *body, const char *cookie,
        sb_http_response_t *response)
{
    char corr_id [32];
    s_send (method, query, body, cookie, WAIT_MS, corr_id);
    s_wait (corr_id, response);
}

//  A valid /authorize query for the run's client, with `state`.
static void
s_query (char *query, size_t size, const char *state)
{
    snprintf (query, size, "response_type=code&client_id=%s&redirect_uri=https%%3A%%2F%%2Fapp.example.com"
              "%%2Fcb&code_challenge=%s&code_challenge_method=S256&state=%s"
              "&scope=mcp%%3Atools%%20mcp%%3Awrite&resource=https%%3A%%2F%%2Fauth.example.test%%2Fmcp",
              s_client, CHALLENGE, state);
}

//  The value of hidden field `name` in `page` (unescaped: the values used
//  here have no entities but in the state). Fails when absent.
static void
s_field (const char *page, const char *name, char *value, size_t size)
{
    char needle [96];
    snprintf (needle, sizeof needle, "name=\"%s\" value=\"", name);
    const char *at = strstr (page, needle);
    if (!at)
        fail_msg ("no hidden field %s", name);
    at += strlen (needle);
    size_t len = strcspn (at, "\"");
    assert_true (len < size);
    memcpy (value, at, len);
    value [len] = 0;
}

//  The cookie pair ("name=value") of the page's Set-Cookie.
static void
s_cookie (const sb_http_response_t *response, char *cookie, size_t size)
{
    const char *set = sb_http_response_header (response, "set-cookie");
    assert_non_null (set);
    size_t len = strcspn (set, ";");
    assert_true (len < size);
    memcpy (cookie, set, len);
    cookie [len] = 0;
}

//  A page for the run's client: its cookie and CSRF field.
static void
s_page (char *cookie, size_t cookie_size, char *csrf, size_t csrf_size)
{
    char query [1024];
    s_query (query, sizeof query, "s1");
    sb_http_response_t response;
    s_http ("GET", query, NULL, NULL, &response);
    assert_int_equal (response.status, 200);
    s_cookie (&response, cookie, cookie_size);
    s_field (response.body, "csrf", csrf, csrf_size);
    sb_http_response_clear (&response);
}

//  The form a page posts, with `csrf`, `decision` and the credentials.
static void
s_form (char *body, size_t size, const char *csrf, const char *decision, const char *org,
        const char *email, const char *password)
{
    snprintf (body, size, "response_type=code&client_id=%s&redirect_uri=https%%3A%%2F%%2Fapp.example.com"
              "%%2Fcb&code_challenge=%s&code_challenge_method=S256&state=s1"
              "&scope=mcp%%3Atools+mcp%%3Awrite&resource=https%%3A%%2F%%2Fauth.example.test%%2Fmcp"
              "&csrf=%s&organisation=%s&email=%s&password=%s&decision=%s",
              s_client, CHALLENGE, csrf, org, email, password, decision);
}

//  A sign-in posted with a fresh page's CSRF pair: its response.
static void
s_signin (const char *org, const char *email, const char *password, sb_http_response_t *response)
{
    char cookie [128], csrf [64], body [2048];
    s_page (cookie, sizeof cookie, csrf, sizeof csrf);
    s_form (body, sizeof body, csrf, "allow", org, email, password);
    s_http ("POST", NULL, body, cookie, response);
}

static void
s_assert_page_headers (const sb_http_response_t *response)
{
    assert_string_equal (sb_http_response_header (response, "content-type"), "text/html; charset=utf-8");
    assert_string_equal (sb_http_response_header (response, "cache-control"), "no-store");
    assert_string_equal (sb_http_response_header (response, "x-frame-options"), "DENY");
    assert_string_equal (sb_http_response_header (response, "x-content-type-options"), "nosniff");
    assert_string_equal (sb_http_response_header (response, "referrer-policy"), "no-referrer");
    assert_non_null (strstr (sb_http_response_header (response, "content-security-policy"),
                             "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
                             "base-uri 'none'; form-action 'self'"));
}

//  Starts a token worker for `issuer` on a new fake broker; waits for READY.
//  Returns 0, or -1.
static int
s_spawn (const char *issuer, fake_broker_t **broker_p, pid_t *pid_p)
{
    fake_broker_t *broker = fake_broker_new (sb_harness_free_port ());
    *broker_p = broker;
    if (!broker)
        return -1;
    char heartbeat [16], db [1024], migrations [512], secret_arg [96];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    snprintf (secret_arg, sizeof secret_arg, "--secret-key-file=%s", s_secret_path);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", broker->endpoint,
        "--credit", "8", "--heartbeat-ms", heartbeat, db, migrations, secret_arg,
        "--issuer", issuer, "--hash-threads", "1", NULL
    };
    *pid_p = sb_harness_spawn (argv, NULL);
    if (*pid_p <= 0)
        return -1;
    sb_msg_t msg = { 0 };
    //  It migrates before it registers: allow for that
    int rc = fake_broker_recv (broker, &msg, 30000) == 0 && msg.command == SB_CMD_READY? 0: -1;
    sb_msg_reset (&msg);
    return rc;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_page (void **state)
{
    char query [1024];
    s_query (query, sizeof query, "x%3Cy%27z%3E");        //  x<y'z>
    sb_http_response_t response;
    s_http ("GET", query, NULL, NULL, &response);
    assert_int_equal (response.status, 200);
    s_assert_page_headers (&response);
    assert_string_equal (sb_http_response_header (&response, "content-security-policy"),
                         "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
                         "base-uri 'none'; form-action 'self' https://app.example.com");
    const char *cookie = sb_http_response_header (&response, "set-cookie");
    assert_non_null (cookie);
    assert_int_equal (strncmp (cookie, "__Host-sb_csrf=", 15), 0);
    assert_int_equal (strcspn (cookie + 15, ";"), 43);
    assert_string_equal (cookie + 15 + 43, "; Secure; HttpOnly; SameSite=Strict; Path=/");
    const char *page = response.body;
    //  The client's name escaped, never raw; where it goes back to.
    assert_non_null (strstr (page, "Acme &lt;Bot&gt; &amp; &quot;Co&quot;"));
    assert_null (strstr (page, "<Bot>"));
    assert_non_null (strstr (page, "<strong>app.example.com</strong>"));
    //  One line per scope, in plain words.
    assert_non_null (strstr (page, "<li>Use your organisation's tools"));
    assert_non_null (strstr (page, "<li>Run tools that change data"));
    //  The request as hidden fields, the state escaped.
    char value [512];
    s_field (page, "client_id", value, sizeof value);
    assert_string_equal (value, s_client);
    s_field (page, "redirect_uri", value, sizeof value);
    assert_string_equal (value, REDIRECT);
    s_field (page, "code_challenge", value, sizeof value);
    assert_string_equal (value, CHALLENGE);
    s_field (page, "code_challenge_method", value, sizeof value);
    assert_string_equal (value, "S256");
    s_field (page, "scope", value, sizeof value);
    assert_string_equal (value, "mcp:tools mcp:write");
    s_field (page, "resource", value, sizeof value);
    assert_string_equal (value, ISSUER "/mcp");
    s_field (page, "state", value, sizeof value);
    assert_string_equal (value, "x&lt;y&#39;z&gt;");
    s_field (page, "csrf", value, sizeof value);
    assert_int_equal (strlen (value), 43);
    //  The form: where it posts, what it asks, both buttons.
    assert_non_null (strstr (page, "<form method=\"post\" action=\"" ISSUER "/authorize\">"));
    assert_non_null (strstr (page, "name=\"organisation\""));
    assert_non_null (strstr (page, "name=\"email\""));
    assert_non_null (strstr (page, "name=\"password\" type=\"password\""));
    assert_non_null (strstr (page, "name=\"decision\" value=\"allow\">Allow</button>"));
    assert_non_null (strstr (page, "name=\"decision\" value=\"deny\" formnovalidate>Deny</button>"));
    assert_null (strstr (page, "<script"));
    sb_http_response_clear (&response);

    //  A page asked with the cookie the browser holds keeps it (another
    //  tab's form stays valid).
    char held [128], csrf [64];
    s_page (held, sizeof held, csrf, sizeof csrf);
    s_query (query, sizeof query, "s1");
    s_http ("GET", query, NULL, held, &response);
    char again [128];
    s_cookie (&response, again, sizeof again);
    assert_string_equal (again, held);
    s_field (response.body, "csrf", value, sizeof value);
    assert_string_equal (value, csrf);
    sb_http_response_clear (&response);
}

static void
test_redirected_errors (void **state)
{
    //  Each with the client and redirect URI right: back to the client.
    struct { const char *query; const char *error; } cases [] = {
        { "code_challenge=" CHALLENGE "&code_challenge_method=S256", "invalid_request" },
        { "response_type=token&code_challenge=" CHALLENGE "&code_challenge_method=S256",
          "unsupported_response_type" },
        { "response_type=code", "invalid_request" },
        { "response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=plain",
          "invalid_request" },
        { "response_type=code&code_challenge=short&code_challenge_method=S256", "invalid_request" },
        { "response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256&scope=admin",
          "invalid_scope" },
        { "response_type=code&code_challenge=" CHALLENGE "&code_challenge_method=S256"
          "&resource=https%3A%2F%2Fother.example%2Fmcp", "invalid_target" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char query [1024], want [256];
        snprintf (query, sizeof query, "client_id=%s&redirect_uri=https%%3A%%2F%%2Fapp.example.com%%2Fcb"
                  "&state=st%zu&%s", s_client, i, cases [i].query);
        sb_http_response_t response;
        s_http ("GET", query, NULL, NULL, &response);
        if (response.status != 302)
            fail_msg ("case %zu: status %d: %s", i, response.status, response.body);
        const char *location = sb_http_response_header (&response, "location");
        assert_non_null (location);
        snprintf (want, sizeof want, REDIRECT "?error=%s&error_description=", cases [i].error);
        if (strncmp (location, want, strlen (want)) != 0)
            fail_msg ("case %zu: %s", i, location);
        snprintf (want, sizeof want, "&state=st%zu&iss=https%%3A%%2F%%2Fauth.example.test", i);
        assert_non_null (strstr (location, want));
        assert_null (sb_http_response_header (&response, "set-cookie"));
        sb_http_response_clear (&response);
    }
}

static void
test_shown_errors (void **state)
{
    //  Never redirected: the client or its redirect URI is in doubt.
    char unknown [256], unregistered [512], nothing [256];
    snprintf (unknown, sizeof unknown, "response_type=code&client_id=%s-nobody&state=s", s_prefix);
    snprintf (unregistered, sizeof unregistered, "response_type=code&client_id=%s&state=s"
              "&redirect_uri=https%%3A%%2F%%2Fevil.example%%2Fcb", s_client);
    snprintf (nothing, sizeof nothing, "response_type=code&state=s");
    struct { const char *query; const char *says; } cases [] = {
        { unknown, "not registered" },
        { unregistered, "not one this client registered" },
        { nothing, "client_id" },
        { "client_id=%zz", "" },
        { "client_id=https%3A%2F%2Fcimd.example%2Fclient.json&response_type=code", "not registered" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        sb_http_response_t response;
        s_http ("GET", cases [i].query, NULL, NULL, &response);
        if (response.status != 400)
            fail_msg ("case %zu: status %d", i, response.status);
        s_assert_page_headers (&response);
        assert_null (sb_http_response_header (&response, "location"));
        assert_non_null (strstr (response.body, "<h1>This sign-in cannot go on</h1>"));
        if (!strstr (response.body, cases [i].says))
            fail_msg ("case %zu: %s", i, response.body);
        sb_http_response_clear (&response);
    }
}

static void
test_csrf (void **state)
{
    char cookie [128], csrf [64], body [2048];
    s_page (cookie, sizeof cookie, csrf, sizeof csrf);
    sb_http_response_t response;
    //  No cookie; a wrong field; no field; the field of another cookie.
    s_form (body, sizeof body, csrf, "deny", "x", "y", "z");
    s_http ("POST", NULL, body, NULL, &response);
    assert_int_equal (response.status, 400);
    assert_non_null (strstr (response.body, "did not come from this server"));
    assert_null (sb_http_response_header (&response, "location"));
    sb_http_response_clear (&response);

    char wrong [64];
    snprintf (wrong, sizeof wrong, "%s", csrf);
    wrong [0] = wrong [0] == 'A'? 'B': 'A';
    s_form (body, sizeof body, wrong, "deny", "x", "y", "z");
    s_http ("POST", NULL, body, cookie, &response);
    assert_int_equal (response.status, 400);
    assert_null (sb_http_response_header (&response, "location"));
    sb_http_response_clear (&response);

    s_form (body, sizeof body, "", "deny", "x", "y", "z");
    s_http ("POST", NULL, body, cookie, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);

    char other_cookie [128], other_csrf [64];
    s_page (other_cookie, sizeof other_cookie, other_csrf, sizeof other_csrf);
    assert_string_not_equal (other_cookie, cookie);
    s_form (body, sizeof body, other_csrf, "deny", "x", "y", "z");
    s_http ("POST", NULL, body, cookie, &response);
    assert_int_equal (response.status, 400);
    sb_http_response_clear (&response);

    //  The right pair, but hidden fields tampered with: validated again.
    s_form (body, sizeof body, csrf, "deny", "x", "y", "z");
    char *at = strstr (body, "code_challenge_method=S256");
    assert_non_null (at);
    memcpy (at + strlen ("code_challenge_method="), "S255", 4);
    s_http ("POST", NULL, body, cookie, &response);
    assert_int_equal (response.status, 302);
    assert_non_null (strstr (sb_http_response_header (&response, "location"),
                             "?error=invalid_request&"));
    sb_http_response_clear (&response);
}

static void
test_deny (void **state)
{
    char cookie [128], csrf [64], body [2048];
    s_page (cookie, sizeof cookie, csrf, sizeof csrf);
    s_form (body, sizeof body, csrf, "deny", "", "", "");
    sb_http_response_t response;
    s_http ("POST", NULL, body, cookie, &response);
    assert_int_equal (response.status, 302);
    const char *location = sb_http_response_header (&response, "location");
    assert_non_null (location);
    assert_int_equal (strncmp (location, REDIRECT "?error=access_denied&error_description=",
                               strlen (REDIRECT "?error=access_denied&error_description=")), 0);
    assert_non_null (strstr (location, "&state=s1&iss=https%3A%2F%2Fauth.example.test"));
    sb_http_response_clear (&response);
}

static void
test_allow (void **state)
{
    char cookie [128], csrf [64], body [2048], sign_in [32], ping [32];
    s_page (cookie, sizeof cookie, csrf, sizeof csrf);
    s_form (body, sizeof body, csrf, "allow", s_tenant, "Alice%40Example.com", "correct+horse+battery");
    s_send ("POST", NULL, body, cookie, WAIT_MS, sign_in);
    //  While the password hashes, the loop answers a ping: its RESULT
    //  comes first (fake_broker_result refuses any other corr_id).
    snprintf (ping, sizeof ping, "p%d", ++s_seq);
    assert_int_equal (fake_broker_send_op (s_broker, ping, WAIT_MS, 0, "ping", NULL, NULL), 0);
    sb_status_t status;
    char *json = NULL;
    assert_int_equal (fake_broker_result (s_broker, ping, WAIT_MS, &status, &json), 0);
    assert_non_null (strstr (json, "\"pong\":true"));
    free (json);

    sb_http_response_t response;
    s_wait (sign_in, &response);
    if (response.status != 302)
        fail_msg ("status %d: %s", response.status, response.body);
    const char *location = sb_http_response_header (&response, "location");
    assert_int_equal (strncmp (location, REDIRECT "?code=", strlen (REDIRECT "?code=")), 0);
    const char *code = location + strlen (REDIRECT "?code=");
    size_t code_len = strcspn (code, "&");
    assert_int_equal (code_len, 43);
    assert_string_equal (code + code_len, "&state=s1&iss=https%3A%2F%2Fauth.example.test");
    uint8_t digest [32];
    sb_sha256 (code, code_len, digest);
    char hex [65];
    sb_hex_encode (digest, sizeof digest, hex);
    sb_http_response_clear (&response);

    PGconn *conn = s_pg ();
    const char *params [] = { hex };
    PGresult *res = s_sql (conn, "SELECT tenant_id, user_id, client_id, redirect_uri, code_challenge,"
                                 "       scope, resource, extract (epoch FROM expires_at - created_at)::int,"
                                 "       used_at IS NULL"
                                 "  FROM oauth_codes WHERE code_hash = decode ($1, 'hex')", 1, params);
    assert_int_equal (PQntuples (res), 1);
    assert_string_equal (PQgetvalue (res, 0, 0), s_tenant);
    assert_string_equal (PQgetvalue (res, 0, 1), s_user_id);
    assert_string_equal (PQgetvalue (res, 0, 2), s_client);
    assert_string_equal (PQgetvalue (res, 0, 3), REDIRECT);
    assert_string_equal (PQgetvalue (res, 0, 4), CHALLENGE);
    assert_string_equal (PQgetvalue (res, 0, 5), "mcp:tools mcp:write");
    assert_string_equal (PQgetvalue (res, 0, 6), ISSUER "/mcp");
    assert_string_equal (PQgetvalue (res, 0, 7), "120");
    assert_string_equal (PQgetvalue (res, 0, 8), "t");
    PQclear (res);
    const char *grant [] = { s_tenant, s_user_id, s_client };
    res = s_sql (conn, "SELECT scope FROM oauth_grants WHERE tenant_id = $1 AND user_id = $2::bigint "
                       "AND client_id = $3 AND revoked_at IS NULL", 3, grant);
    assert_int_equal (PQntuples (res), 1);
    assert_string_equal (PQgetvalue (res, 0, 0), "mcp:tools mcp:write");
    PQclear (res);
    PQfinish (conn);
    char subject [48];
    snprintf (subject, sizeof subject, "user:%s", s_user_id);
    assert_int_equal (s_audit_count ("signin", subject), 1);
    assert_int_equal (s_audit_count ("code_issued", subject), 1);
}

static void
test_refused_signins (void **state)
{
    //  A wrong password: the page again, one sentence, audited.
    sb_http_response_t response;
    s_signin (s_tenant, "alice%40example.com", "not+the+password", &response);
    assert_int_equal (response.status, 200);
    s_assert_page_headers (&response);
    assert_non_null (strstr (response.body, "The organisation, email or password is not right."));
    assert_non_null (strstr (response.body, "value=\"alice@example.com\""));     //  kept, not the password
    assert_null (strstr (response.body, "not the password"));
    assert_null (sb_http_response_header (&response, "location"));
    sb_http_response_clear (&response);
    assert_int_equal (s_audit_count ("signin_failed", "alice@example.com"), 1);
    PGconn *conn = s_pg ();
    const char *params [] = { s_tenant };
    PGresult *res = s_sql (conn, "SELECT detail::text FROM audit_log WHERE tenant_id = $1 "
                                 "AND action = 'signin_failed'", 1, params);
    assert_null (strstr (PQgetvalue (res, 0, 0), "password\":"));
    assert_non_null (strstr (PQgetvalue (res, 0, 0), "\"reason\": \"password\""));
    PQclear (res);
    PQfinish (conn);

    //  An unknown user and a disabled one: the same sentence, same status.
    s_signin (s_tenant, "nobody%40example.com", "correct+horse+battery", &response);
    assert_int_equal (response.status, 200);
    assert_non_null (strstr (response.body, "The organisation, email or password is not right."));
    sb_http_response_clear (&response);
    assert_int_equal (s_audit_count ("signin_failed", "nobody@example.com"), 1);
    s_signin (s_tenant, "bob%40example.com", "correct+horse+battery", &response);
    assert_int_equal (response.status, 200);
    assert_non_null (strstr (response.body, "The organisation, email or password is not right."));
    sb_http_response_clear (&response);
    assert_int_equal (s_audit_count ("signin_failed", "bob@example.com"), 1);

    //  Missing fields: asked for, nothing hashed or audited.
    s_signin (s_tenant, "", "", &response);
    assert_int_equal (response.status, 200);
    assert_non_null (strstr (response.body, "Enter your organisation, email and password."));
    sb_http_response_clear (&response);
}

static void
test_brake (void **state)
{
    //  Five failures of one email in the window: refused without a hash.
    PGconn *conn = s_pg ();
    const char *params [] = { s_tenant };
    PQclear (s_sql (conn, "SELECT audit ($1, 'mallory@example.com', 'signin_failed', '{}') "
                          "FROM generate_series (1, 5)", 1, params));
    PQfinish (conn);
    sb_http_response_t response;
    s_signin (s_tenant, "Mallory%40example.com", "correct+horse+battery", &response);
    assert_int_equal (response.status, 429);
    assert_non_null (strstr (response.body, "Too many sign-ins failed for this email."));
    sb_http_response_clear (&response);
}

static void
test_cancel_while_hashing (void **state)
{
    char cookie [128], csrf [64], body [2048], sign_in [32], ping [32];
    s_page (cookie, sizeof cookie, csrf, sizeof csrf);
    //  An unknown organisation: the dummy hash, no audit.
    s_form (body, sizeof body, csrf, "allow", "no-such-org", "alice%40example.com", "whatever1");
    s_send ("POST", NULL, body, cookie, WAIT_MS, sign_in);
    //  The ping's query follows the lookup on the one connection: when it
    //  is answered, the sign-in is on the hashing thread.
    snprintf (ping, sizeof ping, "p%d", ++s_seq);
    assert_int_equal (fake_broker_send_op (s_broker, ping, WAIT_MS, 0, "ping", NULL, NULL), 0);
    sb_status_t status;
    char *json = NULL;
    assert_int_equal (fake_broker_result (s_broker, ping, WAIT_MS, &status, &json), 0);
    free (json);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_cancel (&msg, sign_in), 0);
    assert_int_equal (sb_msg_send (s_broker->router, &msg, s_broker->worker), 0);
    sb_msg_reset (&msg);
    assert_int_equal (fake_broker_result (s_broker, sign_in, WAIT_MS, &status, &json), 0);
    assert_int_equal (status, SB_STATUS_CANCELLED);
    free (json);
    //  The worker goes on: a sign-in behind it (same thread) is answered.
    sb_http_response_t response;
    s_signin ("no-such-org", "alice%40example.com", "whatever2", &response);
    assert_int_equal (response.status, 200);
    assert_non_null (strstr (response.body, "The organisation, email or password is not right."));
    sb_http_response_clear (&response);
}

static void
test_loopback_issuer (void **state)
{
    //  An http issuer on a loopback host: the cookie cannot be Secure, so
    //  it cannot be __Host-; a POST with that cookie passes the CSRF check.
    fake_broker_t *main_broker = s_broker;
    pid_t pid = -1;
    assert_int_equal (s_spawn ("http://127.0.0.1:8080", &s_broker, &pid), 0);
    char query [1024];
    s_query (query, sizeof query, "s1");
    char *at = strstr (query, "&resource=");
    assert_non_null (at);
    *at = 0;            //  the resource of this issuer differs: leave it out
    sb_http_response_t response;
    s_http ("GET", query, NULL, NULL, &response);
    assert_int_equal (response.status, 200);
    const char *cookie = sb_http_response_header (&response, "set-cookie");
    assert_int_equal (strncmp (cookie, "sb_csrf=", 8), 0);
    assert_string_equal (cookie + 8 + 43, "; HttpOnly; SameSite=Strict; Path=/");
    assert_non_null (strstr (response.body, "action=\"http://127.0.0.1:8080/authorize\""));
    char pair [128], csrf [64], body [2048];
    s_cookie (&response, pair, sizeof pair);
    s_field (response.body, "csrf", csrf, sizeof csrf);
    sb_http_response_clear (&response);
    snprintf (body, sizeof body, "response_type=code&client_id=%s&redirect_uri=https%%3A%%2F%%2F"
              "app.example.com%%2Fcb&code_challenge=%s&code_challenge_method=S256&state=s1"
              "&scope=mcp%%3Atools+mcp%%3Awrite&csrf=%s&decision=deny", s_client, CHALLENGE, csrf);
    s_http ("POST", NULL, body, pair, &response);
    assert_int_equal (response.status, 302);
    assert_non_null (strstr (sb_http_response_header (&response, "location"),
                             "?error=access_denied&"));
    assert_non_null (strstr (sb_http_response_header (&response, "location"),
                             "&iss=http%3A%2F%2F127.0.0.1%3A8080"));
    sb_http_response_clear (&response);
    int wstatus = sb_harness_stop (pid);
    fake_broker_destroy (&s_broker);
    s_broker = main_broker;
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 0);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "h1a%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    snprintf (s_tenant, sizeof s_tenant, "%s-acme", s_prefix);
    snprintf (s_client, sizeof s_client, "%s-client", s_prefix);
    //  Hashed before the worker starts: no heartbeat goes unanswered meanwhile.
    char hash [SB_PASSWORD_ENCODED_MAX];
    const char *why = NULL;
    if (sb_password_hash (PASSWORD, hash, sizeof hash, &why))
        return -1;
    snprintf (s_secret_path, sizeof s_secret_path, "/tmp/sb-authorize-XXXXXX");
    int fd = mkstemp (s_secret_path);
    if (fd < 0)
        return -1;
    const char secret [] = "0123456789abcdef0123456789abcdef-authorize-test\n";
    if (write (fd, secret, sizeof secret - 1) != (ssize_t) (sizeof secret - 1))
        return -1;
    close (fd);

    if (s_spawn (ISSUER, &s_broker, &s_pid))
        return -1;
    //  Migrated: the tenant, alice (and bob, disabled), the client.
    PGconn *conn = s_pg ();
    const char *tenant [] = { s_tenant };
    PQclear (s_sql (conn, "INSERT INTO tenants (id, name) VALUES ($1, $1)", 1, tenant));
    const char *alice [] = { s_tenant, "Alice@example.com", hash };
    PGresult *res = s_sql (conn, "INSERT INTO users (tenant_id, email, password_hash) "
                                 "VALUES ($1, $2, $3) RETURNING id", 3, alice);
    snprintf (s_user_id, sizeof s_user_id, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    const char *bob [] = { s_tenant, "bob@example.com", hash };
    PQclear (s_sql (conn, "INSERT INTO users (tenant_id, email, password_hash, disabled_at) "
                          "VALUES ($1, $2, $3, now ())", 3, bob));
    const char *client [] = { s_client, CLIENT_NAME, REDIRECT };
    PQclear (s_sql (conn, "INSERT INTO oauth_clients (client_id, kind, client_name, redirect_uris) "
                          "VALUES ($1, 'registered', $2, ARRAY [$3])", 3, client));
    PQfinish (conn);

    return 0;
}

static int
s_teardown (void **state)
{
    //  A sanitizer report at exit makes the status non-zero: that fails the run.
    bool clean = true;
    if (s_pid > 0) {
        int wstatus = sb_harness_stop (s_pid);
        clean = WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0;
        if (!clean)
            fprintf (stderr, "the token worker did not exit cleanly (0x%x)\n", (unsigned) wstatus);
        s_pid = -1;
    }
    fake_broker_destroy (&s_broker);
    if (s_secret_path [0])
        unlink (s_secret_path);
    int rc = -1;
    PGconn *conn = s_conninfo? PQconnectdb (s_conninfo): NULL;
    if (conn && PQstatus (conn) == CONNECTION_OK) {
        PQclear (PQexec (conn, "SELECT set_config ('switchboard.system', 'on', false)"));
        char pattern [48];
        snprintf (pattern, sizeof pattern, "%s-%%", s_prefix);
        const char *params [] = { pattern };
        //  Deleting the tenant deletes its users, grants, codes and audit rows.
        PGresult *res = PQexecParams (conn, "DELETE FROM tenants WHERE id LIKE $1",
                                      1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
        PQclear (res);
        res = PQexecParams (conn, "DELETE FROM oauth_clients WHERE client_id LIKE $1",
                            1, NULL, params, NULL, NULL, 0);
        rc = rc == 0 && PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
        PQclear (res);
    }
    PQfinish (conn);
    free (s_conninfo);
    return clean? rc: -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_page),
        cmocka_unit_test (test_redirected_errors),
        cmocka_unit_test (test_shown_errors),
        cmocka_unit_test (test_csrf),
        cmocka_unit_test (test_deny),
        cmocka_unit_test (test_allow),
        cmocka_unit_test (test_refused_signins),
        cmocka_unit_test (test_brake),
        cmocka_unit_test (test_cancel_while_hashing),
        //  Last: the main worker's heartbeats go unanswered meanwhile.
        cmocka_unit_test (test_loopback_issuer),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
