/*  tests/38_workers_admin.c — the admin API (workers/sb_admin.c, op
    admin/http) as a real sb-worker --role token against a fake broker and
    the real test PostgreSQL: requests go in as the gateway relays them
    (payload/sb_http_payload.h), responses and rows are checked.

      - tenants: create (201), duplicate (409), bad id (400), unknown plan
        (422 naming it), missing or unknown members, malformed JSON and
        duplicate keys (400); get, list, plan set; plans listed;
      - users: add (Argon2id off the loop), short password (422), bad email
        (400), duplicate email (409), unknown tenant (404), list, remove;
      - a password reset stores a new hash and revokes the user's refresh
        families (reason 'admin'); tokens revoked per tenant or per user;
      - a client revoked by its percent-encoded id: revoked_at set, its
        grants, codes and families gone in every tenant, audited in each;
      - a tenant's deletion removes its users, grants, codes, families,
        tokens, tasks, connections and audit rows, and no other tenant's;
      - the audit log newest first, paged by ?before, bounded ?limit;
      - routing: unknown routes 404, wrong methods 405, bad %-escapes and
        unknown query parameters 400, keys/rotate refused without --secret-key-file;
      - quotas (migration 014): plans created, shown, listed with their
        limits, changed field by field (limits_version moves on, so the
        quota service pushes it); negative, absurd, fractional, string and
        unknown limits refused with the field and its range named; burst
        required with a rate; unknown plan 404 (422 where a tenant names
        it); a tenant's billing anchor (1..28, audited); a tenant's usage
        (period by its anchor, month and minute counts and refusals, the
        allowance and what remains, null when unlimited).

    Tenants and plans of this run start with a prefix unique to it; every
    row is deleted at the end. */
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_attr.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_password.h"

#define HEARTBEAT_MS    10000       /* the test talks to PostgreSQL between jobs: a long liveness */
#define WAIT_MS         15000       /* a RESULT, at most (a hash takes a fraction of it) */

static fake_broker_t *s_broker;     /* the fake broker the worker registers with */
static pid_t s_pid = -1;            /* sb-worker --role token */
static char s_prefix [32];          /* tenants and clients of this run start with it */
static char *s_conninfo;            /* the test PostgreSQL */
static PGconn *s_pg;                /* a blocking connection with switchboard.system on */
static int s_seq;                   /* numbers correlation ids */

//  ---------------------------------------------------------------------
//  Requests

//  Sends `method` `path`?`query` with `body` (NULL: none) as admin/http
//  and returns the response's body as JSON (new); *status its status.
static json_t *
s_admin (const char *method, const char *path, const char *query, const char *body, int *status)
{
    sb_http_request_t request = {
        .method = sb_unconst (method), .path = sb_unconst (path),
        .query = sb_unconst (query? query: ""), .body = sb_unconst (body? body: ""),
        .body_len = body? strlen (body): 0, .remote = sb_unconst ("127.0.0.1")
    };
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    sb_job_t job = { .op = "admin/http", .data = data };
    zframe_t *payload = sb_job_encode (&job);
    free (data);
    assert_non_null (payload);
    char corr_id [32];
    snprintf (corr_id, sizeof corr_id, "a%d", ++s_seq);
    assert_int_equal (fake_broker_send_job (s_broker, corr_id, WAIT_MS, 0, &payload), 0);
    sb_status_t job_status;
    char *text = NULL;
    if (fake_broker_result (s_broker, corr_id, WAIT_MS, &job_status, &text))
        fail_msg ("%s %s: no RESULT", method, path);
    if (job_status != SB_STATUS_OK)
        fail_msg ("%s %s: job ended %s: %s", method, path, sb_status_name (job_status), text);
    sb_http_response_t response = { 0 };
    const char *why = NULL;
    if (sb_http_response_decode (text, strlen (text), &response, &why))
        fail_msg ("%s %s: not an HTTP response (%s): %s", method, path, why, text);
    free (text);
    assert_string_equal (sb_http_response_header (&response, "content-type"), "application/json");
    assert_string_equal (sb_http_response_header (&response, "cache-control"), "no-store");
    json_error_t error;
    json_t *json = json_loads (response.body, 0, &error);
    if (!json_is_object (json))
        fail_msg ("%s %s: body is no JSON object: %s", method, path, response.body);
    *status = response.status;
    sb_http_response_clear (&response);
    return json;
}

//  The request must answer `want`; returns the body (new).
static json_t *
s_expect (int want, const char *method, const char *path, const char *query, const char *body)
{
    int status = 0;
    json_t *json = s_admin (method, path, query, body, &status);
    if (status != want) {
        char *text = json_dumps (json, JSON_COMPACT);
        fail_msg ("%s %s?%s: status %d, want %d: %s", method, path, query? query: "", status, want,
                  text);
    }
    return json;
}

//  The request must be refused with `want` and error code `code`; when
//  `words` is not NULL, the message must contain it.
static void
s_refused (int want, const char *code, const char *words, const char *method, const char *path,
           const char *query, const char *body)
{
    json_t *json = s_expect (want, method, path, query, body);
    const char *error = json_string_value (json_object_get (json, "error"));
    const char *message = json_string_value (json_object_get (json, "message"));
    if (!error || strcmp (error, code) != 0 || !message || !*message
    ||  (words && !strstr (message, words)))
        fail_msg ("%s %s: want error %s mentioning \"%s\", got %s: %s", method, path, code,
                  words? words: "", error? error: "(none)", message? message: "(none)");
    json_decref (json);
}

//  A path formatted into a static buffer (one at a time).
static const char *
s_path (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static const char *
s_path (const char *format, ...)
{
    static char path [512];
    va_list args;
    va_start (args, format);
    vsnprintf (path, sizeof path, format, args);
    va_end (args);
    return path;
}

//  A tenant id of this run.
static const char *
s_tenant (const char *name)
{
    static char tenants [4][64];
    static int next;
    char *tenant = tenants [next++ % 4];
    snprintf (tenant, 64, "%s-%s", s_prefix, name);
    return tenant;
}

//  Creates tenant `id` through the API.
static void
s_create_tenant (const char *id, const char *plan)
{
    char body [256];
    snprintf (body, sizeof body, "{\"id\":\"%s\",\"name\":\"Tenant %s\",\"plan\":\"%s\"}", id, id, plan);
    json_decref (s_expect (201, "POST", "/admin/tenants", NULL, body));
}

//  Adds a user through the API; returns its id.
static long long
s_add_user (const char *tenant, const char *email, const char *password)
{
    char body [512];
    snprintf (body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    json_t *json = s_expect (201, "POST", s_path ("/admin/tenants/%s/users", tenant), NULL, body);
    json_t *user = json_object_get (json, "user");
    assert_string_equal (json_string_value (json_object_get (user, "email")), email);
    long long id = json_integer_value (json_object_get (user, "id"));
    assert_true (id > 0);
    json_decref (json);
    return id;
}

//  ---------------------------------------------------------------------
//  Rows

//  Runs `sql` with up to three text parameters; fails unless it succeeds.
static void
s_sql (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    const char *params [] = { p1, p2, p3 };
    PGresult *res = PQexecParams (s_pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType rc = PQresultStatus (res);
    if (rc != PGRES_COMMAND_OK && rc != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    PQclear (res);
}

//  The first column of the first row of `sql` ($1 = p1, $2 = p2) as a number.
static long long
s_number (const char *sql, int n, const char *p1, const char *p2)
{
    const char *params [] = { p1, p2 };
    PGresult *res = PQexecParams (s_pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK || PQntuples (res) != 1)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    long long value = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    return value;
}

//  Rows of `table` owned by `tenant`.
static long long
s_rows (const char *table, const char *tenant)
{
    char sql [128];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM %s WHERE tenant_id = $1", table);
    return s_number (sql, 1, tenant, NULL);
}

//  Audit rows of `tenant` with `action`.
static long long
s_audited (const char *tenant, const char *action)
{
    return s_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = $2 "
                     "AND actor = 'admin'", 2, tenant, action);
}

static void
s_client (const char *client_id)
{
    s_sql ("INSERT INTO oauth_clients (client_id, kind, redirect_uris) "
           "VALUES ($1, 'registered', '{https://client.example/cb}') ON CONFLICT DO NOTHING",
           1, client_id, NULL, NULL);
}

//  What a user of `tenant` holds through `client`: a grant, an unused
//  code, a refresh family with one token. Plus a task and a connection
//  of the tenant.
static void
s_seed (const char *tenant, long long user, const char *client_id)
{
    char id [24];
    snprintf (id, sizeof id, "%lld", user);
    s_sql ("INSERT INTO oauth_grants (tenant_id, user_id, client_id, scope) "
           "VALUES ($1, $2::bigint, $3, 'mcp:tools') ON CONFLICT DO NOTHING", 3, tenant, id, client_id);
    s_sql ("INSERT INTO oauth_codes (code_hash, tenant_id, user_id, client_id, redirect_uri, "
           "code_challenge, scope, expires_at) "
           "VALUES (sha256 (convert_to (random ()::text || clock_timestamp ()::text, 'UTF8')), "
           "$1, $2::bigint, $3, 'https://client.example/cb', repeat ('A', 43), 'mcp:tools', "
           "now () + interval '2 minutes')", 3, tenant, id, client_id);
    s_sql ("WITH f AS (INSERT INTO refresh_families (tenant_id, user_id, client_id, scope) "
           "VALUES ($1, $2::bigint, $3, 'mcp:tools') RETURNING tenant_id, id) "
           "INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, generation, expires_at) "
           "SELECT sha256 (convert_to (random ()::text || clock_timestamp ()::text, 'UTF8')), "
           "tenant_id, id, 1, now () + interval '1 day' FROM f", 3, tenant, id, client_id);
    s_sql ("INSERT INTO tasks (tenant_id, id, subject, connector, tool, args, ttl_ms, "
           "poll_interval_ms, run_ms, run_deadline, expires_at) "
           "VALUES ($1, 't' || floor (random () * 1e9)::text, 'user:' || $2, 'c', 't', '{}', "
           "60000, 1000, 60000, now () + interval '1 minute', now () + interval '1 minute')",
           2, tenant, id, NULL);
    s_sql ("INSERT INTO connections (tenant_id, connector) VALUES ($1, 'sandbox-crm') "
           "ON CONFLICT DO NOTHING", 1, tenant, NULL, NULL);
}

//  Live refresh families of a user.
static long long
s_live_families (const char *tenant, long long user)
{
    char id [24];
    snprintf (id, sizeof id, "%lld", user);
    return s_number ("SELECT count(*) FROM refresh_families WHERE tenant_id = $1 "
                     "AND user_id = $2::bigint AND revoked_at IS NULL", 2, tenant, id);
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_tenants (void **state)
{
    const char *a = s_tenant ("ta");
    s_create_tenant (a, "pro");
    json_t *json = s_expect (200, "GET", s_path ("/admin/tenants/%s", a), NULL, NULL);
    json_t *tenant = json_object_get (json, "tenant");
    assert_string_equal (json_string_value (json_object_get (tenant, "id")), a);
    assert_string_equal (json_string_value (json_object_get (tenant, "plan")), "pro");
    assert_int_equal (json_integer_value (json_object_get (tenant, "users")), 0);
    json_decref (json);
    assert_int_equal (s_audited (a, "tenant_created"), 1);

    //  Listed (after a cursor just before it)
    char after [80];
    snprintf (after, sizeof after, "after=%s-t", s_prefix);
    json = s_expect (200, "GET", "/admin/tenants", after, NULL);
    json_t *first = json_array_get (json_object_get (json, "tenants"), 0);
    assert_string_equal (json_string_value (json_object_get (first, "id")), a);
    assert_true (json_is_boolean (json_object_get (json, "more")));
    json_decref (json);

    //  Refusals change nothing
    char body [256];
    snprintf (body, sizeof body, "{\"id\":\"%s\",\"name\":\"again\"}", a);
    s_refused (409, "conflict", a, "POST", "/admin/tenants", NULL, body);
    s_refused (400, "invalid_request", "tenant id", "POST", "/admin/tenants", NULL,
               "{\"id\":\"Bad Id\",\"name\":\"x\"}");
    s_refused (400, "invalid_request", "tenant id", "POST", "/admin/tenants", NULL,
               "{\"id\":\"_admin\",\"name\":\"x\"}");
    snprintf (body, sizeof body, "{\"id\":\"%s-tb\",\"name\":\"x\",\"plan\":\"gold\"}", s_prefix);
    s_refused (422, "unknown_plan", "\"gold\"", "POST", "/admin/tenants", NULL, body);
    snprintf (body, sizeof body, "{\"id\":\"%s-tb\"}", s_prefix);
    s_refused (400, "invalid_request", "\"name\"", "POST", "/admin/tenants", NULL, body);
    snprintf (body, sizeof body, "{\"id\":\"%s-tb\",\"name\":\"x\",\"colour\":1}", s_prefix);
    s_refused (400, "invalid_request", "colour", "POST", "/admin/tenants", NULL, body);
    snprintf (body, sizeof body, "{\"id\":\"%s-tb\",\"name\":\"x\",\"name\":\"y\"}", s_prefix);
    s_refused (400, "invalid_json", "duplicate", "POST", "/admin/tenants", NULL, body);
    s_refused (400, "invalid_json", NULL, "POST", "/admin/tenants", NULL, "{\"id\":");
    s_refused (400, "invalid_json", "object", "POST", "/admin/tenants", NULL, "[1]");
    s_refused (400, "invalid_request", "\"name\" must be a string", "POST", "/admin/tenants", NULL,
               "{\"id\":\"x\",\"name\":7}");
    snprintf (body, sizeof body, "%s-tb", s_prefix);
    assert_int_equal (s_number ("SELECT count(*) FROM tenants WHERE id = $1", 1, body, NULL), 0);

    //  Get: unknown, impossible
    s_refused (404, "not_found", "-nope", "GET", s_path ("/admin/tenants/%s-nope", s_prefix), NULL, NULL);
    s_refused (400, "invalid_request", NULL, "GET", "/admin/tenants/UPPER", NULL, NULL);

    //  Plans
    json = s_expect (200, "PUT", s_path ("/admin/tenants/%s/plan", a), NULL, "{\"plan\":\"enterprise\"}");
    assert_true (json_is_true (json_object_get (json, "changed")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (json, "tenant"), "plan")),
                         "enterprise");
    json_decref (json);
    assert_int_equal (s_audited (a, "plan_set"), 1);
    s_refused (422, "unknown_plan", "\"platinum\"", "PUT", s_path ("/admin/tenants/%s/plan", a), NULL,
               "{\"plan\":\"platinum\"}");
    s_refused (404, "not_found", NULL, "PUT", s_path ("/admin/tenants/%s-nope/plan", s_prefix), NULL,
               "{\"plan\":\"free\"}");
    s_refused (400, "invalid_request", "\"plan\"", "PUT", s_path ("/admin/tenants/%s/plan", a), NULL,
               "{}");
    assert_int_equal (s_audited (a, "plan_set"), 1);
    json = s_expect (200, "GET", "/admin/plans", NULL, NULL);
    bool free_seen = false;
    size_t i;
    json_t *plan;
    json_array_foreach (json_object_get (json, "plans"), i, plan)
        if (strcmp (json_string_value (json_object_get (plan, "id")), "free") == 0)
            free_seen = true;
    assert_true (free_seen);
    json_decref (json);
}

static void
test_users (void **state)
{
    const char *t = s_tenant ("us");
    s_create_tenant (t, "free");
    const char *users = s_path ("/admin/tenants/%s/users", t);
    char path [256];
    snprintf (path, sizeof path, "%s", users);
    long long id = s_add_user (t, "Ada@example.com", "correct horse battery");
    assert_int_equal (s_audited (t, "user_added"), 1);
    //  The hash is Argon2id and verifies
    char text [24];
    snprintf (text, sizeof text, "%lld", id);
    const char *params [] = { t, text };
    PGresult *res = PQexecParams (s_pg, "SELECT password_hash FROM users WHERE tenant_id = $1 "
                                        "AND id = $2::bigint", 2, NULL, params, NULL, NULL, 0);
    assert_int_equal (PQntuples (res), 1);
    const char *error = NULL;
    assert_int_equal (sb_password_verify (PQgetvalue (res, 0, 0), "correct horse battery", &error),
                      SB_PASSWORD_MATCH);
    PQclear (res);

    s_refused (409, "conflict", NULL, "POST", path, NULL,
               "{\"email\":\"ada@EXAMPLE.com\",\"password\":\"another long one\"}");
    s_refused (422, "weak_password", "12", "POST", path, NULL,
               "{\"email\":\"bob@example.com\",\"password\":\"short pass\"}");
    s_refused (400, "invalid_request", "email", "POST", path, NULL,
               "{\"email\":\"no at sign\",\"password\":\"long enough password\"}");
    s_refused (400, "invalid_request", "\"password\"", "POST", path, NULL, "{\"email\":\"b@x.org\"}");
    s_refused (404, "not_found", NULL, "POST", s_path ("/admin/tenants/%s-nope/users", s_prefix), NULL,
               "{\"email\":\"b@x.org\",\"password\":\"long enough password\"}");
    assert_int_equal (s_rows ("users", t), 1);

    long long id2 = s_add_user (t, "bob@example.com", "another long password");
    json_t *json = s_expect (200, "GET", path, NULL, NULL);
    json_t *list = json_object_get (json, "users");
    assert_int_equal (json_array_size (list), 2);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (list, 0), "id")), id);
    assert_null (json_object_get (json_array_get (list, 0), "password_hash"));
    json_decref (json);

    json = s_expect (200, "DELETE", s_path ("%s/%lld", path, id2), NULL, NULL);
    assert_int_equal (json_integer_value (json_object_get (json, "user_id")), id2);
    json_decref (json);
    assert_int_equal (s_audited (t, "user_removed"), 1);
    s_refused (404, "not_found", NULL, "DELETE", s_path ("%s/%lld", path, id2), NULL, NULL);
    s_refused (400, "invalid_request", NULL, "DELETE", s_path ("%s/0", path), NULL, NULL);
    s_refused (400, "invalid_request", NULL, "DELETE", s_path ("%s/abc", path), NULL, NULL);
    s_refused (400, "invalid_request", NULL, "DELETE", s_path ("%s/99999999999999999999", path), NULL,
               NULL);
    assert_int_equal (s_rows ("users", t), 1);
}

static void
test_password_reset_and_tokens (void **state)
{
    const char *t = s_tenant ("pw");
    s_create_tenant (t, "free");
    char client [64];
    snprintf (client, sizeof client, "%s-client-pw", s_prefix);
    s_client (client);
    long long ann = s_add_user (t, "ann@example.com", "first password here");
    long long ben = s_add_user (t, "ben@example.com", "second password here");
    s_seed (t, ann, client);
    s_seed (t, ann, client);
    s_seed (t, ben, client);
    assert_int_equal (s_live_families (t, ann), 2);

    json_t *json = s_expect (200, "PUT", s_path ("/admin/tenants/%s/users/%lld/password", t, ann), NULL,
                             "{\"password\":\"a brand new password\"}");
    assert_int_equal (json_integer_value (json_object_get (json, "refresh_families_revoked")), 2);
    assert_int_equal (json_integer_value (json_object_get (json, "codes_deleted")), 2);
    json_decref (json);
    assert_int_equal (s_live_families (t, ann), 0);
    assert_int_equal (s_live_families (t, ben), 1);
    assert_int_equal (s_number ("SELECT count(*) FROM refresh_families WHERE tenant_id = $1 "
                                "AND revoked_reason = 'admin'", 1, t, NULL), 2);
    assert_int_equal (s_audited (t, "password_reset"), 1);
    char text [24];
    snprintf (text, sizeof text, "%lld", ann);
    const char *params [] = { t, text };
    PGresult *res = PQexecParams (s_pg, "SELECT password_hash FROM users WHERE tenant_id = $1 "
                                        "AND id = $2::bigint", 2, NULL, params, NULL, NULL, 0);
    const char *error = NULL;
    assert_int_equal (sb_password_verify (PQgetvalue (res, 0, 0), "a brand new password", &error),
                      SB_PASSWORD_MATCH);
    PQclear (res);

    s_refused (422, "weak_password", NULL, "PUT",
               s_path ("/admin/tenants/%s/users/%lld/password", t, ann), NULL, "{\"password\":\"x\"}");
    s_refused (404, "not_found", NULL, "PUT", s_path ("/admin/tenants/%s/users/999999999/password", t),
               NULL, "{\"password\":\"long enough password\"}");

    //  Tokens: one user's, then the tenant's
    s_seed (t, ann, client);
    s_seed (t, ben, client);
    const char *tokens = s_path ("/admin/tenants/%s/tokens", t);
    char path [256];
    snprintf (path, sizeof path, "%s", tokens);
    snprintf (text, sizeof text, "user=%lld", ann);
    json = s_expect (200, "DELETE", path, text, NULL);
    assert_int_equal (json_integer_value (json_object_get (json, "refresh_families_revoked")), 1);
    json_decref (json);
    assert_int_equal (s_live_families (t, ann), 0);
    assert_int_equal (s_live_families (t, ben), 2);
    json = s_expect (200, "DELETE", path, NULL, NULL);
    assert_int_equal (json_integer_value (json_object_get (json, "refresh_families_revoked")), 2);
    json_decref (json);
    assert_int_equal (s_live_families (t, ben), 0);
    assert_int_equal (s_audited (t, "tokens_revoked"), 2);
    s_refused (404, "not_found", NULL, "DELETE", path, "user=999999999", NULL);
    s_refused (400, "invalid_request", NULL, "DELETE", path, "user=-1", NULL);
    s_refused (400, "invalid_request", "\"who\"", "DELETE", path, "who=1", NULL);
    s_refused (404, "not_found", NULL, "DELETE", s_path ("/admin/tenants/%s-nope/tokens", s_prefix),
               NULL, NULL);
}

static void
test_clients (void **state)
{
    const char *a = s_tenant ("ca");
    const char *b = s_tenant ("cb");
    s_create_tenant (a, "free");
    s_create_tenant (b, "free");
    //  A Client ID Metadata Document client: its id is a URL, sent encoded
    char client [128], encoded [192];
    snprintf (client, sizeof client, "https://%s.example/client.json", s_prefix);
    snprintf (encoded, sizeof encoded, "https%%3A%%2F%%2F%s.example%%2Fclient.json", s_prefix);
    s_client (client);
    long long ua = s_add_user (a, "a@example.com", "password for a user");
    long long ub = s_add_user (b, "b@example.com", "password for b user");
    s_seed (a, ua, client);
    s_seed (b, ub, client);

    json_t *json = s_expect (200, "GET", "/admin/clients", NULL, NULL);
    bool seen = false;
    size_t i;
    json_t *entry;
    json_array_foreach (json_object_get (json, "clients"), i, entry)
        if (strcmp (json_string_value (json_object_get (entry, "client_id")), client) == 0) {
            seen = true;
            assert_int_equal (json_integer_value (json_object_get (entry, "grants")), 2);
        }
    assert_true (seen);
    json_decref (json);

    json = s_expect (200, "DELETE", s_path ("/admin/clients/%s", encoded), NULL, NULL);
    assert_string_equal (json_string_value (json_object_get (json, "client_id")), client);
    json_t *deleted = json_object_get (json, "deleted");
    assert_int_equal (json_integer_value (json_object_get (deleted, "oauth_grants")), 2);
    assert_int_equal (json_integer_value (json_object_get (deleted, "refresh_families")), 2);
    assert_int_equal (json_array_size (json_object_get (json, "tenants")), 2);
    json_decref (json);
    assert_int_equal (s_number ("SELECT count(*) FROM oauth_clients WHERE client_id = $1 "
                                "AND revoked_at IS NOT NULL", 1, client, NULL), 1);
    assert_int_equal (s_rows ("oauth_grants", a) + s_rows ("oauth_grants", b), 0);
    assert_int_equal (s_rows ("oauth_codes", a) + s_rows ("oauth_codes", b), 0);
    assert_int_equal (s_rows ("refresh_families", a) + s_rows ("refresh_tokens", b), 0);
    assert_int_equal (s_audited (a, "client_revoked"), 1);
    assert_int_equal (s_audited (b, "client_revoked"), 1);
    //  The users stay
    assert_int_equal (s_rows ("users", a), 1);

    s_refused (404, "not_found", NULL, "DELETE", s_path ("/admin/clients/%s-none", s_prefix), NULL, NULL);
    s_refused (400, "invalid_request", "escape", "DELETE", "/admin/clients/bad%zzid", NULL, NULL);
    s_refused (400, "invalid_request", NULL, "DELETE", "/admin/clients/nul%00id", NULL, NULL);
}

static void
test_tenant_delete (void **state)
{
    const char *a = s_tenant ("da");
    const char *b = s_tenant ("db");
    s_create_tenant (a, "free");
    s_create_tenant (b, "free");
    char client [64];
    snprintf (client, sizeof client, "%s-client-del", s_prefix);
    s_client (client);
    long long ua = s_add_user (a, "a@example.com", "password for a user");
    long long ub = s_add_user (b, "b@example.com", "password for b user");
    s_seed (a, ua, client);
    s_seed (b, ub, client);
    static const char *tables [] = { "users", "oauth_grants", "oauth_codes", "refresh_families",
                                     "refresh_tokens", "tasks", "connections", "audit_log" };
    long long before_b [8];
    for (size_t i = 0; i < 8; i++) {
        assert_true (s_rows (tables [i], a) >= 1);
        before_b [i] = s_rows (tables [i], b);
        assert_true (before_b [i] >= 1);
    }
    long long audit_a = s_rows ("audit_log", a);

    json_t *json = s_expect (200, "DELETE", s_path ("/admin/tenants/%s", a), NULL, NULL);
    assert_string_equal (json_string_value (json_object_get (json, "tenant")), a);
    json_t *deleted = json_object_get (json, "deleted");
    assert_int_equal (json_integer_value (json_object_get (deleted, "users")), 1);
    assert_int_equal (json_integer_value (json_object_get (deleted, "refresh_tokens")), 1);
    assert_int_equal (json_integer_value (json_object_get (deleted, "tasks")), 1);
    assert_int_equal (json_integer_value (json_object_get (deleted, "audit_log")), audit_a);
    json_decref (json);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal (s_rows (tables [i], a), 0);
        assert_int_equal (s_rows (tables [i], b), before_b [i]);
    }
    assert_int_equal (s_number ("SELECT count(*) FROM tenants WHERE id = $1", 1, a, NULL), 0);
    s_refused (404, "not_found", NULL, "GET", s_path ("/admin/tenants/%s", a), NULL, NULL);
    s_refused (404, "not_found", NULL, "DELETE", s_path ("/admin/tenants/%s", a), NULL, NULL);
    //  The client (global) stays
    assert_int_equal (s_number ("SELECT count(*) FROM oauth_clients WHERE client_id = $1",
                                1, client, NULL), 1);
}

static void
test_audit (void **state)
{
    const char *t = s_tenant ("au");
    s_create_tenant (t, "free");
    for (int i = 0; i < 3; i++)
        json_decref (s_expect (200, "PUT", s_path ("/admin/tenants/%s/plan", t), NULL,
                               i % 2? "{\"plan\":\"free\"}": "{\"plan\":\"pro\"}"));
    //  tenant_created, plan_set × 3: newest first, two a page
    char query [128];
    snprintf (query, sizeof query, "tenant=%s&limit=2", t);
    json_t *json = s_expect (200, "GET", "/admin/audit", query, NULL);
    json_t *entries = json_object_get (json, "entries");
    assert_int_equal (json_array_size (entries), 2);
    long long first = json_integer_value (json_object_get (json_array_get (entries, 0), "id"));
    long long second = json_integer_value (json_object_get (json_array_get (entries, 1), "id"));
    assert_true (first > second);
    assert_string_equal (json_string_value (json_object_get (json_array_get (entries, 0), "action")),
                         "plan_set");
    assert_string_equal (json_string_value (json_object_get (json_array_get (entries, 0), "actor")),
                         "admin");
    assert_string_equal (json_string_value (json_object_get (
        json_object_get (json_array_get (entries, 0), "detail"), "to")), "pro");
    long long next = json_integer_value (json_object_get (json, "next_before"));
    assert_int_equal (next, second);
    json_decref (json);
    snprintf (query, sizeof query, "tenant=%s&limit=2&before=%lld", t, next);
    json = s_expect (200, "GET", "/admin/audit", query, NULL);
    entries = json_object_get (json, "entries");
    assert_int_equal (json_array_size (entries), 2);
    assert_string_equal (json_string_value (json_object_get (json_array_get (entries, 1), "action")),
                         "tenant_created");
    json_decref (json);
    snprintf (query, sizeof query, "tenant=%s&before=%lld", t, second - 0);
    json = s_expect (200, "GET", "/admin/audit", query, NULL);
    assert_int_equal (json_array_size (json_object_get (json, "entries")), 2);
    assert_true (json_is_null (json_object_get (json, "next_before")));
    json_decref (json);

    s_refused (400, "invalid_request", "limit", "GET", "/admin/audit", "limit=0", NULL);
    s_refused (400, "invalid_request", "limit", "GET", "/admin/audit", "limit=501", NULL);
    s_refused (400, "invalid_request", "limit", "GET", "/admin/audit", "limit=ten", NULL);
    s_refused (400, "invalid_request", NULL, "GET", "/admin/audit", "limit=1&limit=2", NULL);
    s_refused (404, "not_found", NULL, "GET", "/admin/audit", s_path ("tenant=%s-nope", s_prefix), NULL);
    json = s_expect (200, "GET", "/admin/audit", "limit=500", NULL);
    assert_true (json_array_size (json_object_get (json, "entries")) <= 500);
    json_decref (json);
}

//  A plan id of this run.
static const char *
s_plan (const char *name)
{
    static char plan [64];
    snprintf (plan, sizeof plan, "%s-%s", s_prefix, name);
    return plan;
}

//  The integer member `key` of the object `member` of `json` (-1: absent).
static long long
s_int_of (json_t *json, const char *member, const char *key)
{
    json_t *value = json_object_get (member? json_object_get (json, member): json, key);
    return json_is_integer (value)? (long long) json_integer_value (value): -1;
}

static void
test_quota_plans (void **state)
{
    char plan [64], body [512];
    snprintf (plan, sizeof plan, "%s", s_plan ("team"));

    //  Created with some limits; the others are unlimited, weight 1.
    snprintf (body, sizeof body, "{\"id\":\"%s\",\"name\":\"Team\",\"rate_per_min\":120,"
              "\"burst\":20,\"monthly_calls\":5000}", plan);
    json_t *json = s_expect (201, "POST", "/admin/plans", NULL, body);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json, "plan"), "id")), plan);
    assert_int_equal (s_int_of (json, "plan", "rate_per_min"), 120);
    assert_int_equal (s_int_of (json, "plan", "burst"), 20);
    assert_int_equal (s_int_of (json, "plan", "max_in_flight"), 0);
    assert_int_equal (s_int_of (json, "plan", "monthly_calls"), 5000);
    assert_int_equal (s_int_of (json, "plan", "weight"), 1);
    assert_int_equal (s_int_of (json, "plan", "tenants"), 0);
    json_decref (json);
    s_refused (409, "conflict", plan, "POST", "/admin/plans", NULL, body);
    long long version = s_number ("SELECT limits_version FROM plans WHERE id = $1", 1, plan, NULL);
    assert_true (version > 0);

    //  Shown, and listed with the seeded plans' limits.
    json = s_expect (200, "GET", s_path ("/admin/plans/%s", plan), NULL, NULL);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json, "plan"), "name")),
                         "Team");
    json_decref (json);
    json = s_expect (200, "GET", "/admin/plans", NULL, NULL);
    bool seen_free = false, seen_team = false;
    size_t i;
    json_t *row;
    json_array_foreach (json_object_get (json, "plans"), i, row) {
        const char *id = json_string_value (json_object_get (row, "id"));
        if (strcmp (id, "free") == 0) {
            seen_free = true;
            assert_int_equal (s_int_of (row, NULL, "rate_per_min"), 60);
            assert_int_equal (s_int_of (row, NULL, "burst"), 30);
            assert_int_equal (s_int_of (row, NULL, "max_in_flight"), 4);
            assert_int_equal (s_int_of (row, NULL, "monthly_calls"), 1000);
            assert_int_equal (s_int_of (row, NULL, "weight"), 1);
        }
        if (strcmp (id, plan) == 0)
            seen_team = true;
    }
    assert_true (seen_free && seen_team);
    json_decref (json);

    //  Changed field by field: the rest stays, the version moves on.
    json = s_expect (200, "PUT", s_path ("/admin/plans/%s", plan), NULL,
                     "{\"max_in_flight\":8,\"weight\":4}");
    assert_true (json_is_true (json_object_get (json, "changed")));
    assert_int_equal (s_int_of (json, "plan", "rate_per_min"), 120);
    assert_int_equal (s_int_of (json, "plan", "max_in_flight"), 8);
    assert_int_equal (s_int_of (json, "plan", "weight"), 4);
    json_decref (json);
    long long changed = s_number ("SELECT limits_version FROM plans WHERE id = $1", 1, plan, NULL);
    assert_true (changed > version);
    assert_true (s_number ("SELECT quota_version ()", 0, NULL, NULL) >= changed);
    //  monthly_calls null = unlimited (0); a name alone does not move the version
    json = s_expect (200, "PUT", s_path ("/admin/plans/%s", plan), NULL,
                     "{\"monthly_calls\":null,\"name\":\"Team plan\"}");
    assert_int_equal (s_int_of (json, "plan", "monthly_calls"), 0);
    json_decref (json);
    version = s_number ("SELECT limits_version FROM plans WHERE id = $1", 1, plan, NULL);
    assert_true (version > changed);
    json = s_expect (200, "PUT", s_path ("/admin/plans/%s", plan), NULL, "{\"name\":\"Team\"}");
    json_decref (json);
    assert_int_equal (s_number ("SELECT limits_version FROM plans WHERE id = $1", 1, plan, NULL), version);
    json = s_expect (200, "PUT", s_path ("/admin/plans/%s", plan), NULL, "{}");
    assert_true (json_is_false (json_object_get (json, "changed")));
    json_decref (json);

    //  Bad limits: refused with the field and its range, nothing changed.
    const char *path = s_path ("/admin/plans/%s", plan);
    char saved [512];
    snprintf (saved, sizeof saved, "%s", path);
    s_refused (400, "invalid_request", "\"rate_per_min\" must be a whole number from 0 to 10000000",
               "PUT", saved, NULL, "{\"rate_per_min\":-1}");
    s_refused (400, "invalid_request", "\"rate_per_min\" must be a whole number from 0 to 10000000",
               "PUT", saved, NULL, "{\"rate_per_min\":10000001}");
    s_refused (400, "invalid_request", "\"burst\" must be a whole number from 0 to 10000000",
               "PUT", saved, NULL, "{\"burst\":1.5}");
    s_refused (400, "invalid_request", "\"max_in_flight\" must be a whole number from 0 to 100000",
               "PUT", saved, NULL, "{\"max_in_flight\":\"8\"}");
    s_refused (400, "invalid_request", "\"max_in_flight\"", "PUT", saved, NULL,
               "{\"max_in_flight\":1e3}");
    s_refused (400, "invalid_request", "\"monthly_calls\" must be a whole number from 0 to 9007199254740992",
               "PUT", saved, NULL, "{\"monthly_calls\":9007199254740993}");
    s_refused (400, "invalid_request", "\"weight\" must be a whole number from 1 to 100",
               "PUT", saved, NULL, "{\"weight\":0}");
    s_refused (400, "invalid_request", "\"weight\"", "PUT", saved, NULL, "{\"weight\":true}");
    s_refused (400, "invalid_request", "\"weight\"", "PUT", saved, NULL, "{\"weight\":null}");
    s_refused (400, "invalid_request", "\"burst\" must be at least 1", "PUT", saved, NULL,
               "{\"burst\":0}");
    s_refused (400, "invalid_request", "\"name\"", "PUT", saved, NULL, "{\"name\":\"\"}");
    s_refused (400, "invalid_request", "colour", "PUT", saved, NULL, "{\"colour\":1}");
    s_refused (400, "invalid_json", NULL, "PUT", saved, NULL, "{\"weight\":99999999999999999999999}");
    assert_int_equal (s_number ("SELECT limits_version FROM plans WHERE id = $1", 1, plan, NULL), version);
    assert_int_equal (s_number ("SELECT burst FROM plans WHERE id = $1", 1, plan, NULL), 20);

    //  A new plan with a rate needs a burst; a bad id; no name.
    snprintf (body, sizeof body, "{\"id\":\"%s\",\"name\":\"R\",\"rate_per_min\":10}", s_plan ("r"));
    s_refused (400, "invalid_request", "\"burst\" must be at least 1", "POST", "/admin/plans", NULL, body);
    s_refused (400, "invalid_request", "plan id", "POST", "/admin/plans", NULL,
               "{\"id\":\"Gold!\",\"name\":\"G\"}");
    snprintf (body, sizeof body, "{\"id\":\"%s\"}", s_plan ("r"));
    s_refused (400, "invalid_request", "\"name\"", "POST", "/admin/plans", NULL, body);
    s_refused (400, "invalid_request", "\"id\"", "POST", "/admin/plans", NULL, "{\"name\":\"G\"}");
    assert_int_equal (s_number ("SELECT count(*) FROM plans WHERE id = $1", 1, s_plan ("r"), NULL), 0);

    //  Unknown plans: 404 on /plans/{id}, 422 where a tenant names one.
    s_refused (404, "not_found", "-nope", "GET", s_path ("/admin/plans/%s-nope", s_prefix), NULL, NULL);
    s_refused (404, "not_found", "-nope", "PUT", s_path ("/admin/plans/%s-nope", s_prefix), NULL,
               "{\"weight\":2}");
    s_refused (405, "method_not_allowed", "GET, PUT", "DELETE", saved, NULL, NULL);

    //  A tenant on the plan: counted, and its change renumbers the tenant.
    const char *t = s_tenant ("qp");
    s_create_tenant (t, "free");
    long long tenant_version = s_number ("SELECT limits_version FROM tenants WHERE id = $1", 1, t, NULL);
    snprintf (body, sizeof body, "{\"plan\":\"%s\"}", plan);
    json_decref (s_expect (200, "PUT", s_path ("/admin/tenants/%s/plan", t), NULL, body));
    assert_true (s_number ("SELECT limits_version FROM tenants WHERE id = $1", 1, t, NULL) > tenant_version);
    json = s_expect (200, "GET", saved, NULL, NULL);
    assert_int_equal (s_int_of (json, "plan", "tenants"), 1);
    json_decref (json);
}

static void
test_quota_anchor_and_usage (void **state)
{
    char t [64], plan [64], body [512];
    snprintf (t, sizeof t, "%s", s_tenant ("qu"));
    snprintf (plan, sizeof plan, "%s", s_plan ("metered"));
    snprintf (body, sizeof body, "{\"id\":\"%s\",\"name\":\"Metered\",\"rate_per_min\":600,"
              "\"burst\":50,\"max_in_flight\":3,\"monthly_calls\":100,\"weight\":2}", plan);
    json_decref (s_expect (201, "POST", "/admin/plans", NULL, body));
    s_create_tenant (t, plan);
    json_t *json = s_expect (200, "GET", s_path ("/admin/tenants/%s", t), NULL, NULL);
    assert_int_equal (s_int_of (json, "tenant", "billing_anchor"), 1);
    json_decref (json);

    //  Anchor: set (audited), unchanged, refused.
    long long version = s_number ("SELECT limits_version FROM tenants WHERE id = $1", 1, t, NULL);
    char path [256];
    snprintf (path, sizeof path, "/admin/tenants/%s/billing-anchor", t);
    json = s_expect (200, "PUT", path, NULL, "{\"day\":15}");
    assert_true (json_is_true (json_object_get (json, "changed")));
    assert_int_equal (s_int_of (json, "tenant", "billing_anchor"), 15);
    json_decref (json);
    assert_int_equal (s_audited (t, "billing_anchor_set"), 1);
    assert_true (s_number ("SELECT limits_version FROM tenants WHERE id = $1", 1, t, NULL) > version);
    json = s_expect (200, "PUT", path, NULL, "{\"day\":15}");
    assert_true (json_is_false (json_object_get (json, "changed")));
    json_decref (json);
    assert_int_equal (s_audited (t, "billing_anchor_set"), 1);
    s_refused (400, "invalid_request", "from 1 to 28", "PUT", path, NULL, "{\"day\":29}");
    s_refused (400, "invalid_request", "from 1 to 28", "PUT", path, NULL, "{\"day\":0}");
    s_refused (400, "invalid_request", "from 1 to 28", "PUT", path, NULL, "{\"day\":-3}");
    s_refused (400, "invalid_request", "from 1 to 28", "PUT", path, NULL, "{\"day\":\"15\"}");
    s_refused (400, "invalid_request", "from 1 to 28", "PUT", path, NULL, "{\"day\":1.5}");
    s_refused (400, "invalid_request", "is required", "PUT", path, NULL, "{}");
    s_refused (404, "not_found", NULL, "PUT", s_path ("/admin/tenants/%s-nope/billing-anchor", s_prefix),
               NULL, "{\"day\":2}");

    //  Usage before any: zeros, the period from day 15.
    snprintf (path, sizeof path, "/admin/tenants/%s/usage", t);
    json = s_expect (200, "GET", path, NULL, NULL);
    assert_string_equal (json_string_value (json_object_get (json, "tenant")), t);
    assert_string_equal (json_string_value (json_object_get (json, "plan")), plan);
    assert_int_equal (s_int_of (json, "limits", "rate_per_min"), 600);
    assert_int_equal (s_int_of (json, "limits", "max_in_flight"), 3);
    assert_int_equal (s_int_of (json, "month", "calls"), 0);
    assert_int_equal (s_int_of (json, "month", "allowance"), 100);
    assert_int_equal (s_int_of (json, "month", "remaining"), 100);
    assert_int_equal (s_int_of (json, "minute", "calls"), 0);
    const char *start = json_string_value (json_object_get (json_object_get (json, "period"), "start"));
    assert_non_null (start);
    assert_int_equal (strlen (start), 24);
    assert_memory_equal (start + 8, "15T00:00:00.000Z", 16);
    json_decref (json);

    //  A batch recorded as the quota service would (this period, this
    //  minute), then the same batch again: counted once.
    s_sql ("SELECT quota_usage_record ($1, 1, jsonb_build_array (jsonb_build_object ("
           " 'tenant', $2::text,"
           " 'period', extract (epoch FROM quota_period_start (15, now ()))::bigint,"
           " 'minute', extract (epoch FROM date_trunc ('minute', now ()))::bigint,"
           " 'calls', 40, 'refused', jsonb_build_object ('rate', 3, 'in_flight', 1))))",
           2, s_prefix, t, NULL);
    s_sql ("SELECT quota_usage_record ($1, 1, jsonb_build_array (jsonb_build_object ("
           " 'tenant', $2::text, 'period', 0, 'minute', 0, 'calls', 999)))", 2, s_prefix, t, NULL);
    json = s_expect (200, "GET", path, NULL, NULL);
    assert_int_equal (s_int_of (json, "month", "calls"), 40);
    assert_int_equal (s_int_of (json, "month", "remaining"), 60);
    json_t *refused = json_object_get (json_object_get (json, "month"), "refused");
    assert_int_equal (s_int_of (refused, NULL, "rate"), 3);
    assert_int_equal (s_int_of (refused, NULL, "in_flight"), 1);
    //  The minute's row is this minute's, unless the minute turned since
    //  the batch: then zeros (the answer says which minute it shows).
    json_t *minute = json_object_get (json, "minute");
    long long minute_calls = s_int_of (minute, NULL, "calls");
    assert_true (minute_calls == 40 || minute_calls == 0);
    json_decref (json);

    //  Unlimited monthly: allowance and remaining null; over the
    //  allowance: remaining 0.
    snprintf (body, sizeof body, "{\"monthly_calls\":30}");
    json_decref (s_expect (200, "PUT", s_path ("/admin/plans/%s", plan), NULL, body));
    json = s_expect (200, "GET", path, NULL, NULL);
    assert_int_equal (s_int_of (json, "month", "remaining"), 0);
    json_decref (json);
    json_decref (s_expect (200, "PUT", s_path ("/admin/plans/%s", plan), NULL, "{\"monthly_calls\":0}"));
    json = s_expect (200, "GET", path, NULL, NULL);
    assert_true (json_is_null (json_object_get (json_object_get (json, "month"), "allowance")));
    assert_true (json_is_null (json_object_get (json_object_get (json, "month"), "remaining")));
    json_decref (json);

    s_refused (404, "not_found", "-nope", "GET", s_path ("/admin/tenants/%s-nope/usage", s_prefix),
               NULL, NULL);
    s_refused (400, "invalid_request", NULL, "GET", "/admin/tenants/UPPER/usage", NULL, NULL);
    s_refused (405, "method_not_allowed", "GET", "POST", path, NULL, "{}");
}

static void
test_routes (void **state)
{
    s_refused (404, "not_found", NULL, "GET", "/admin/nothing", NULL, NULL);
    s_refused (404, "not_found", NULL, "GET", "/admin/", NULL, NULL);
    s_refused (404, "not_found", NULL, "GET", "/admin/tenants/", NULL, NULL);
    s_refused (404, "not_found", NULL, "GET", "/admin//tenants", NULL, NULL);
    s_refused (404, "not_found", NULL, "GET", "/admin/tenants/a/b/c/d/e/f", NULL, NULL);
    s_refused (405, "method_not_allowed", "GET, POST", "DELETE", "/admin/tenants", NULL, NULL);
    s_refused (405, "method_not_allowed", "PUT", "GET", "/admin/tenants/x/plan", NULL, NULL);
    s_refused (405, "method_not_allowed", NULL, "PATCH", "/admin/plans", NULL, NULL);
    s_refused (400, "invalid_request", NULL, "GET", "/admin/tenants/%4", NULL, NULL);
    s_refused (400, "invalid_request", "\"x\"", "GET", "/admin/plans", "x=1", NULL);
    s_refused (400, "invalid_request", NULL, "GET", "/admin/plans", "x=%zz", NULL);
    //  Key rotation needs --secret-key-file, which this worker lacks: the
    //  job fails with that sentence (the gateway answers 503); the
    //  rotation itself is 38_workers_oauth_token's and 60_oauth_admin's.
    sb_http_request_t rotate = {
        .method = sb_unconst ("POST"), .path = sb_unconst ("/admin/keys/rotate"),
        .query = sb_unconst (""), .body = sb_unconst (""), .remote = sb_unconst ("127.0.0.1")
    };
    char *data = sb_http_request_encode (&rotate);
    assert_non_null (data);
    sb_job_t job = { .op = "admin/http", .data = data };
    zframe_t *payload = sb_job_encode (&job);
    free (data);
    assert_non_null (payload);
    assert_int_equal (fake_broker_send_job (s_broker, "rotate", WAIT_MS, 0, &payload), 0);
    sb_status_t job_status;
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, "rotate", WAIT_MS, &job_status, &text), 0);
    assert_int_not_equal (job_status, SB_STATUS_OK);
    assert_non_null (strstr (text, "--secret-key-file"));
    free (text);
    //  Percent-encoded literal segments route as their decoded selves
    json_decref (s_expect (200, "GET", "/admin/pl%61ns", NULL, NULL));
}

//  A job whose deadline passes while its password is hashed is abandoned:
//  no RESULT, no user, and the worker serves on. One hashing thread, so
//  the abandoned hash is done before the next one starts.
static void
test_abandon_while_hashing (void **state)
{
    const char *t = s_tenant ("ab");
    s_create_tenant (t, "free");
    sb_http_request_t request = {
        .method = "POST", .path = sb_unconst (s_path ("/admin/tenants/%s/users", t)), .query = "",
        .body = "{\"email\":\"late@example.com\",\"password\":\"too late for this one\"}",
        .remote = sb_unconst ("127.0.0.1")
    };
    request.body_len = strlen (request.body);
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    sb_job_t job = { .op = "admin/http", .data = data };
    zframe_t *payload = sb_job_encode (&job);
    free (data);
    //  Argon2id takes far longer than this deadline
    assert_int_equal (fake_broker_send_job (s_broker, "late", 20, 0, &payload), 0);
    //  The next RESULT is this one's, not the abandoned job's
    s_add_user (t, "next@example.com", "right on time password");
    assert_int_equal (s_number ("SELECT count(*) FROM users WHERE tenant_id = $1 "
                                "AND email = 'late@example.com'", 1, t, NULL), 0);
    assert_int_equal (s_rows ("users", t), 1);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "adm%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    s_pg = PQconnectdb (s_conninfo);
    if (PQstatus (s_pg) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (s_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    s_broker = fake_broker_new (sb_harness_free_port ());
    if (!s_broker)
        return -1;
    char heartbeat [16], db [1024], migrations [512];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", s_broker->endpoint,
        "--credit", "4", "--heartbeat-ms", heartbeat, "--hash-threads", "1", db, migrations, NULL
    };
    s_pid = sb_harness_spawn (argv, NULL);
    if (s_pid <= 0)
        return -1;
    sb_msg_t msg = { 0 };
    //  It migrates before it registers: allow for that
    if (fake_broker_recv (s_broker, &msg, 30000) || msg.command != SB_CMD_READY)
        return -1;
    sb_msg_reset (&msg);
    return 0;
}

static int
s_teardown (void **state)
{
    bool clean = true;
    if (s_pid > 0) {
        int wstatus = sb_harness_stop (s_pid);
        clean = WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0;
        if (!clean)
            fprintf (stderr, "the token worker did not exit cleanly (0x%x)\n", (unsigned) wstatus);
    }
    fake_broker_destroy (&s_broker);
    int rc = -1;
    if (s_pg && PQstatus (s_pg) == CONNECTION_OK) {
        char pattern [48], clients [64];
        snprintf (pattern, sizeof pattern, "%s-%%", s_prefix);
        snprintf (clients, sizeof clients, "%%%s%%", s_prefix);
        const char *p1 [] = { pattern }, *p2 [] = { clients };
        PGresult *res = PQexecParams (s_pg, "DELETE FROM tenants WHERE id LIKE $1",
                                      1, NULL, p1, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear (res);
        res = PQexecParams (s_pg, "DELETE FROM oauth_clients WHERE client_id LIKE $1",
                            1, NULL, p2, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_COMMAND_OK)
            rc = -1;
        PQclear (res);
        res = PQexecParams (s_pg, "DELETE FROM plans WHERE id LIKE $1", 1, NULL, p1, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_COMMAND_OK)
            rc = -1;
        PQclear (res);
        res = PQexecParams (s_pg, "DELETE FROM usage_batches WHERE broker_id = $1",
                            1, NULL, (const char *[]) { s_prefix }, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_COMMAND_OK)
            rc = -1;
        PQclear (res);
    }
    PQfinish (s_pg);
    free (s_conninfo);
    return clean ? rc : -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_routes),
        cmocka_unit_test (test_tenants),
        cmocka_unit_test (test_users),
        cmocka_unit_test (test_password_reset_and_tokens),
        cmocka_unit_test (test_clients),
        cmocka_unit_test (test_tenant_delete),
        cmocka_unit_test (test_audit),
        cmocka_unit_test (test_abandon_while_hashing),
        cmocka_unit_test (test_quota_plans),
        cmocka_unit_test (test_quota_anchor_and_usage),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
