/*  tests/38_workers_admin_webhooks.c — the admin API's webhook routes
    (workers/sb_wh_admin.c, migration 018) on one sb-worker --role token
    process (A) against a fake broker and the real test PostgreSQL, with
    an in-process token worker that opens sealed secrets (test/open):

      - endpoints: created with a generated whsec_ secret (answered once)
        or a given one (never answered); the row holds it sealed under the
        current data key (not the plain text), opening with owner
        "webhook:<id>", column "secret"; list and show without secrets;
        refusals named: unknown scheme, bad options, bad secret, unknown
        tenant, connector or endpoint, bad ids, unknown members, 405;
      - rotation: the new secret sealed, the replaced one as "previous"
        with previous_until = now + overlap_s (default a day; 0: none), a
        rotation that read an older secret loses (409), bad overlap;
      - disable, enable, delete (events with it); audit records;
      - subscriptions: a generated whsec_ secret sealed as
        "subscription:<id>"; types, connector, rate and in-flight stored;
        bad URLs (scheme, userinfo, no host, spaces, fragment, too long),
        bad types, limits; enable after the deliverer disabled it;
        unsubscribe;
      - dead letters listed in pages, one replayed (pending, attempts
        kept, 409 again), all replayed (a disabled subscription's stay),
        a delivery's attempts, the event log by connector in pages;
      - a data-key rotation: reseal moves endpoints (secret and previous)
        and subscriptions under the new key, where they open to what they
        held; the old key retires; a reseal that read an older secret loses;
      - no secret and no master secret in A's log.

    connection_keys is one table for the whole cluster: this test and
    38_workers_conn_keys hold the ctest RESOURCE_LOCK connection_keys;
    every worker uses the shared test master secret. Tenants of this run
    carry a prefix unique to it and are deleted at the end. */
#include <czmq.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_attr.h"
#include "sb_conn.h"
#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_token_role.h"

#define HEARTBEAT_MS    20000       /* long: the test talks to one worker while the other waits */
#define WAIT_MS         15000       /* a RESULT, at most */
#define SECRET_FILE     SB_SOURCE_DIR "/tests/fixtures/conn-master-secret"
#define MAX_SECRETS     64          /* webhook secrets this run makes (searched for in answers and the log) */
#define MAX_RESEALS     50          /* reseal calls until nothing is left, at most */

typedef struct {
    fake_broker_t *broker;
    pid_t pid;                      /* -1: in-process */
    char log [128];                 /* its stderr */
} s_proc_t;

static s_proc_t s_a, s_in;
static sb_worker_t *s_in_worker;
static sb_token_role_t *s_in_role;
static pthread_t s_in_thread;
static char s_prefix [32];
static char *s_conninfo;
static PGconn *s_pg;
static char s_dir [64];             /* the connectors of this run */
static int s_seq;
static char *s_secrets [MAX_SECRETS];   /* every webhook secret of this run */
static int s_secret_count;

//  ---------------------------------------------------------------------
//  Rows

static PGresult *
s_sql (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    const char *params [] = { p1, p2, p3 };
    PGresult *res = PQexecParams (s_pg, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType rc = PQresultStatus (res);
    if (rc != PGRES_COMMAND_OK && rc != PGRES_TUPLES_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    return res;
}

//  The first value of `sql` as a new string ("" for NULL).
static char *
s_value (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    PGresult *res = s_sql (sql, n, p1, p2, p3);
    if (PQntuples (res) != 1)
        fail_msg ("%s: %d rows", sql, PQntuples (res));
    char *value = strdup (PQgetvalue (res, 0, 0));
    PQclear (res);
    return value;
}

static long long
s_number (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    char *text = s_value (sql, n, p1, p2, p3);
    long long value = strtoll (text, NULL, 10);
    free (text);
    return value;
}

static const char *
s_tenant (const char *name)
{
    static char tenants [8][64];
    static int next;
    char *tenant = tenants [next++ % 8];
    snprintf (tenant, 64, "%s-%s", s_prefix, name);
    return tenant;
}

static void
s_create_tenant (const char *id)
{
    PQclear (s_sql ("INSERT INTO tenants (id, name) VALUES ($1, $1)", 1, id, NULL, NULL));
}


//  ---------------------------------------------------------------------
//  Jobs

static void
s_send (s_proc_t *proc, const char *op, const char *data, char corr_id [32])
{
    snprintf (corr_id, 32, "k%d", ++s_seq);
    sb_job_t job = { .op = sb_unconst (op), .data = sb_unconst (data) };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    assert_int_equal (fake_broker_send_job (proc->broker, corr_id, WAIT_MS, 0, &payload), 0);
}

static char *
s_wait (s_proc_t *proc, const char *corr_id, sb_status_t *status)
{
    char *text = NULL;
    if (fake_broker_result (proc->broker, corr_id, WAIT_MS, status, &text))
        fail_msg ("no RESULT %s", corr_id);
    return text;
}

//  Op `op` with `data` on `proc`: the result parsed (new), *status set.
static json_t *
s_op (s_proc_t *proc, const char *op, const char *data, sb_status_t *status)
{
    char corr_id [32];
    s_send (proc, op, data, corr_id);
    char *text = s_wait (proc, corr_id, status);
    json_t *json = json_loads (text, 0, NULL);
    if (*status == SB_STATUS_OK && !json)
        fail_msg ("%s: not JSON: %s", op, text);
    free (text);
    return json;
}

static char *
s_admin_encode (const char *method, const char *path, const char *query, const char *body)
{
    sb_http_request_t request = {
        .method = sb_unconst (method), .path = sb_unconst (path),
        .query = sb_unconst (query? query: ""), .body = sb_unconst (body? body: ""),
        .body_len = body? strlen (body): 0, .remote = sb_unconst ("127.0.0.1")
    };
    char *data = sb_http_request_encode (&request);
    assert_non_null (data);
    return data;
}

//  An admin/http answer: the status and the body (new JSON); `text` the
//  body as sent, when asked for.
static json_t *
s_admin_answer (const char *what, char *result, int *status, char **text)
{
    sb_http_response_t response = { 0 };
    const char *why = NULL;
    if (sb_http_response_decode (result, strlen (result), &response, &why))
        fail_msg ("%s: not an HTTP response (%s): %s", what, why, result);
    assert_string_equal (sb_http_response_header (&response, "content-type"), "application/json");
    json_t *json = json_loads (response.body, 0, NULL);
    if (!json_is_object (json))
        fail_msg ("%s: body is no JSON object: %s", what, response.body);
    *status = response.status;
    if (text)
        *text = strdup (response.body);
    sb_http_response_clear (&response);
    return json;
}

static json_t *
s_admin (s_proc_t *proc, int want, const char *method, const char *path, const char *query,
         const char *body, char **text)
{
    char *data = s_admin_encode (method, path, query, body);
    char corr_id [32];
    s_send (proc, "admin/http", data, corr_id);
    free (data);
    sb_status_t job_status;
    char *result = s_wait (proc, corr_id, &job_status);
    if (job_status != SB_STATUS_OK)
        fail_msg ("%s %s: job ended %s: %s", method, path, sb_status_name (job_status), result);
    int status = 0;
    json_t *json = s_admin_answer (path, result, &status, text);
    free (result);
    if (status != want) {
        char *dump = json_dumps (json, JSON_COMPACT);
        fail_msg ("%s %s: status %d, want %d: %s", method, path, status, want, dump);
    }
    return json;
}

static void
s_refused (int want, const char *code, const char *words, const char *method, const char *path,
           const char *query, const char *body)
{
    json_t *json = s_admin (&s_a, want, method, path, query, body, NULL);
    const char *error = json_string_value (json_object_get (json, "error"));
    const char *message = json_string_value (json_object_get (json, "message"));
    if (!error || strcmp (error, code) != 0 || !message || (words && !strstr (message, words)))
        fail_msg ("%s %s: want %s mentioning \"%s\", got %s: %s", method, path, code,
                  words? words: "", error? error: "(none)", message? message: "(none)");
    json_decref (json);
}

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

static const char *
s_str (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    if (!value)
        fail_msg ("no string \"%s\"", key);
    return value;
}


//  ---------------------------------------------------------------------
//  The in-process worker: test/seal {tenant, connector, column, plain |
//  repeat}, test/open {key_id, tenant, connector, column, sealed},
//  test/plain {need_id}.

static void
s_sealed (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    json_t *data = arg;
    const char *plain = json_string_value (json_object_get (data, "plain"));
    char *owned = NULL;
    size_t len = plain? strlen (plain): 0;
    if (!plain) {
        len = (size_t) json_integer_value (json_object_get (data, "repeat"));
        owned = malloc (len + 1);
        memset (owned, 'a', len);
        owned [len] = 0;
        plain = owned;
    }
    size_t sealed_len = 0;
    uint8_t *sealed = sb_conn_seal (s_in_role, key_id, json_string_value (json_object_get (data, "tenant")),
                                    json_string_value (json_object_get (data, "connector")),
                                    json_string_value (json_object_get (data, "column")),
                                    plain, len, &sealed_len);
    char *text = sealed? sb_conn_bytea_text (sealed, sealed_len): NULL;
    json_t *result = json_pack ("{s:s, s:s?}", "key_id", key_id, "sealed", text);
    char *dump = json_dumps (result, JSON_COMPACT);
    sb_worker_job_done (job_p, SB_STATUS_OK, dump);
    free (dump);
    json_decref (result);
    free (text);
    free (sealed);
    free (owned);
    json_decref (data);
}

static void
s_opened (sb_worker_job_t **job_p, const char *key_id, void *arg)
{
    json_t *data = arg;
    size_t len = 0;
    uint8_t *sealed = sb_conn_bytea_parse (json_string_value (json_object_get (data, "sealed")), &len);
    char *plain = sealed? sb_conn_open (s_in_role, json_string_value (json_object_get (data, "key_id")),
                                        json_string_value (json_object_get (data, "tenant")),
                                        json_string_value (json_object_get (data, "connector")),
                                        json_string_value (json_object_get (data, "column")),
                                        sealed, len): NULL;
    json_t *result = json_pack ("{s:s, s:s?}", "current", key_id, "plain", plain);
    char *dump = json_dumps (result, JSON_COMPACT);
    sb_worker_job_done (job_p, SB_STATUS_OK, dump);
    free (dump);
    json_decref (result);
    free (plain);
    free (sealed);
    json_decref (data);
}

static void
s_plain_ready (const char *key_id, const char *error, void *arg)
{
    sb_worker_job_t *job = arg;
    if (!key_id) {
        sb_worker_job_fail (&job, error);
        return;
    }
    char text [128];
    snprintf (text, sizeof text, "{\"key_id\":\"%s\"}", key_id);
    sb_worker_job_done (&job, SB_STATUS_OK, text);
}

static void
s_data_free (void *arg)
{
    json_decref (arg);
}

static void
s_in_start (void *state, sb_worker_job_t *job)
{
    const char *op = sb_worker_job_spec (job)->op;
    const char *text = sb_worker_job_spec (job)->data;
    json_t *data = text? json_loads (text, 0, NULL): NULL;
    if (strcmp (op, "test/seal") == 0)
        sb_conn_keys_ready (state, job, NULL, s_sealed, data, s_data_free);
    else
    if (strcmp (op, "test/open") == 0)
        sb_conn_keys_ready (state, job, json_string_value (json_object_get (data, "key_id")),
                            s_opened, data, s_data_free);
    else
    if (strcmp (op, "test/plain") == 0) {
        sb_conn_keys_ready_plain (state, json_string_value (json_object_get (data, "need_id")),
                                  s_plain_ready, job);
        json_decref (data);
    }
    else
    if (strcmp (op, "test/stop") == 0) {
        json_decref (data);
        sb_worker_stop (sb_worker_job_worker (job));
        sb_worker_job_done (&job, SB_STATUS_OK, "{}");
    }
    else {
        json_decref (data);
        sb_token_role.start (state, job);
    }
}

static void
s_in_abandon (void *state, sb_worker_job_t *job)
{
    sb_token_role.abandon (state, job);
}

static const sb_worker_role_t s_in_ops = { s_in_start, s_in_abandon };

static void *
s_in_run (void *arg)
{
    return (void *) (intptr_t) sb_worker_run (s_in_worker);
}


//  Opens in-process: the plain text (new) or NULL when it does not open;
//  *status not OK when the key cannot be had.
static char *
s_open (const char *key_id, const char *tenant, const char *connector, const char *column,
        const char *sealed, sb_status_t *status)
{
    json_t *data = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "key_id", key_id, "tenant", tenant,
                              "connector", connector, "column", column, "sealed", sealed);
    char *text = json_dumps (data, JSON_COMPACT);
    json_decref (data);
    json_t *result = s_op (&s_in, "test/open", text, status);
    free (text);
    const char *plain = json_string_value (json_object_get (result, "plain"));
    char *copy = plain? strdup (plain): NULL;
    json_decref (result);
    return copy;
}


//  ---------------------------------------------------------------------
//  Webhook helpers

//  A secret of this run, remembered for the log check (returned borrowed).
static const char *
s_remember (const char *secret)
{
    assert_true (s_secret_count < MAX_SECRETS);
    s_secrets [s_secret_count] = strdup (secret);
    return s_secrets [s_secret_count++];
}

//  An admin call through A whose answer text must hold none of the
//  secrets remembered so far, except `allowed` (NULL: none).
static json_t *
s_call (int want, const char *method, const char *path, const char *query, const char *body,
        const char *allowed)
{
    char *text = NULL;
    json_t *json = s_admin (&s_a, want, method, path, query, body, &text);
    for (int i = 0; i < s_secret_count; i++)
        if ((!allowed || strcmp (s_secrets [i], allowed) != 0) && strstr (text, s_secrets [i]))
            fail_msg ("%s %s: secret %d in the answer: %s", method, path, i, text);
    assert_null (strstr (text, "secret_enc"));
    assert_null (strstr (text, "previous_enc"));
    free (text);
    return json;
}

//  Creates an endpoint for `tenant` (201): its answer (new).
static json_t *
s_endpoint (const char *tenant, const char *connector, const char *scheme, const char *options,
            const char *secret)
{
    char body [1024];
    snprintf (body, sizeof body, "{\"connector\":\"%s\",\"scheme\":\"%s\"%s%s%s%s%s}", connector,
              scheme, options? ",\"options\":": "", options? options: "",
              secret? ",\"secret\":\"": "", secret? secret: "", secret? "\"": "");
    json_t *answer = s_call (201, "POST", s_path ("/admin/tenants/%s/webhooks", tenant), NULL,
                             body, NULL);
    json_t *secret_json = json_object_get (answer, "secret");
    if (secret)
        assert_null (secret_json);
    else {
        assert_true (json_is_string (secret_json));
        s_remember (json_string_value (secret_json));
    }
    return answer;
}

//  Opens column `column` ("secret", "previous") of webhook row `table`
//  (webhook_endpoints, owner "webhook:<id>"; webhook_subscriptions, owner
//  "subscription:<id>") in-process: the plain text (new), or NULL when
//  the column is NULL or does not open.
static char *
s_open_webhook (const char *table, const char *id, const char *column)
{
    char sql [256];
    bool endpoint = strcmp (table, "webhook_endpoints") == 0;
    snprintf (sql, sizeof sql, "SELECT tenant_id, key_id, %s FROM %s WHERE id = $1",
              strcmp (column, "secret") == 0? "secret_enc": "previous_enc", table);
    PGresult *res = s_sql (sql, 1, id, NULL, NULL);
    assert_int_equal (PQntuples (res), 1);
    if (PQgetisnull (res, 0, 2)) {
        PQclear (res);
        return NULL;
    }
    char owner [128];
    snprintf (owner, sizeof owner, "%s:%s", endpoint? "webhook": "subscription", id);
    sb_status_t status;
    char *plain = s_open (PQgetvalue (res, 0, 1), PQgetvalue (res, 0, 0), owner, column,
                          PQgetvalue (res, 0, 2), &status);
    PQclear (res);
    assert_int_equal (status, SB_STATUS_OK);
    return plain;
}

//  The hex of `text` (new), to look for in a bytea column's text.
static char *
s_hex (const char *text)
{
    size_t len = strlen (text);
    char *hex = malloc (2 * len + 1);
    for (size_t i = 0; i < len; i++)
        snprintf (hex + 2 * i, 3, "%02x", (unsigned char) text [i]);
    hex [2 * len] = 0;
    return hex;
}

//  The row holds the secret sealed: not in the clear, under the current key.
static void
s_assert_sealed (const char *table, const char *id, const char *secret)
{
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT encode (secret_enc, 'hex') || coalesce (encode ("
              "%s, 'hex'), '') FROM %s WHERE id = $1",
              strcmp (table, "webhook_endpoints") == 0? "previous_enc": "NULL::bytea", table);
    char *stored = s_value (sql, 1, id, NULL, NULL);
    char *hex = s_hex (secret);
    assert_null (strstr (stored, hex));
    free (hex);
    free (stored);
    snprintf (sql, sizeof sql, "SELECT key_id = connection_key_current () FROM %s WHERE id = $1",
              table);
    char *current = s_value (sql, 1, id, NULL, NULL);
    assert_string_equal (current, "t");
    free (current);
    char *plain = s_open_webhook (table, id, "secret");
    assert_non_null (plain);
    assert_string_equal (plain, secret);
    free (plain);
}

static long long
s_audits (const char *tenant, const char *action)
{
    return s_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND action = $2", 2,
                     tenant, action, NULL);
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_endpoints (void **state)
{
    const char *tenant = s_tenant ("ep");
    s_create_tenant (tenant);
    //  A generated secret: whsec_ + base64 of 32 bytes, in this answer only.
    json_t *answer = s_endpoint (tenant, "wh-pay", "stripe", "{\"tolerance_s\":600}", NULL);
    json_t *endpoint = json_object_get (answer, "endpoint");
    const char *id = s_str (endpoint, "id");
    assert_int_equal (strlen (id), 27);
    assert_memory_equal (id, "we_", 3);
    assert_string_equal (s_str (endpoint, "path"), s_path ("/webhooks/%s", id));
    assert_string_equal (s_str (endpoint, "scheme"), "stripe");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (endpoint, "options"),
                                                           "tolerance_s")), 600);
    const char *secret = s_str (answer, "secret");
    assert_int_equal (strlen (secret), 6 + 44);
    assert_memory_equal (secret, "whsec_", 6);
    s_assert_sealed ("webhook_endpoints", id, secret);
    char *first = strdup (id);
    json_decref (answer);

    //  A secret given: stored sealed, never answered.
    const char *given = s_remember ("gh-given-secret-for-the-test-0001");
    answer = s_endpoint (tenant, "wh-git", "github", NULL, given);
    char *second = strdup (s_str (json_object_get (answer, "endpoint"), "id"));
    s_assert_sealed ("webhook_endpoints", second, given);
    json_decref (answer);
    //  Standard Webhooks takes a whsec_ secret.
    const char *standard = s_remember ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    json_decref (s_endpoint (tenant, "wh-git", "standard", NULL, standard));

    //  The list and one endpoint: no secret (s_call checks the text).
    json_t *list = s_call (200, "GET", s_path ("/admin/tenants/%s/webhooks", tenant), NULL, NULL,
                           NULL);
    assert_int_equal (json_array_size (json_object_get (list, "endpoints")), 3);
    assert_true (json_is_false (json_object_get (list, "more")));
    json_decref (list);
    json_t *one = s_call (200, "GET", s_path ("/admin/webhooks/%s", first), NULL, NULL, NULL);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (one, "endpoint"),
                                                           "events")), 0);
    json_decref (one);
    assert_int_equal (s_audits (tenant, "webhook_endpoint_created"), 3);

    //  Refusals, each named.
    const char *path = s_path ("/admin/tenants/%s/webhooks", tenant);
    char path_copy [256];
    snprintf (path_copy, sizeof path_copy, "%s", path);
    s_refused (400, "invalid_request", "there is no scheme \"paypal\"", "POST", path_copy, NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"paypal\"}");
    s_refused (400, "invalid_request", "the options are refused", "POST", path_copy, NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"stripe\",\"options\":{\"bogus\":1}}");
    s_refused (400, "invalid_request", "the options are refused", "POST", path_copy, NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"salesforce\"}");
    s_refused (400, "invalid_request", "\"options\" must be a JSON object", "POST", path_copy, NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"stripe\",\"options\":[1]}");
    s_refused (400, "invalid_request", "the secret is refused", "POST", path_copy, NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"standard\",\"secret\":\"not-a-whsec\"}");
    s_refused (400, "invalid_request", "the secret is refused", "POST", path_copy, NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"github\",\"secret\":\"\"}");
    s_refused (400, "invalid_request", "\"connector\" must be a string", "POST", path_copy, NULL,
               "{\"scheme\":\"github\"}");
    s_refused (400, "invalid_request", "unknown member \"colour\"", "POST", path_copy, NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"github\",\"colour\":1}");
    s_refused (400, "invalid_json", NULL, "POST", path_copy, NULL, "{nope");
    s_refused (404, "not_found", "there is no connector \"wh-nope\"", "POST", path_copy, NULL,
               "{\"connector\":\"wh-nope\",\"scheme\":\"github\"}");
    s_refused (400, "invalid_request", "a connector name", "POST", path_copy, NULL,
               "{\"connector\":\"bad name\",\"scheme\":\"github\"}");
    s_refused (404, "not_found", "there is no tenant", "POST",
               s_path ("/admin/tenants/%s-nobody/webhooks", s_prefix), NULL,
               "{\"connector\":\"wh-pay\",\"scheme\":\"github\"}");
    s_refused (404, "not_found", "there is no tenant", "GET",
               s_path ("/admin/tenants/%s-nobody/webhooks", s_prefix), NULL, NULL);
    s_refused (400, "invalid_request", "a tenant id", "GET", "/admin/tenants/BAD!/webhooks", NULL,
               NULL);
    s_refused (404, "not_found", "there is no webhook endpoint \"we_nothere0\"", "GET",
               "/admin/webhooks/we_nothere0", NULL, NULL);
    s_refused (400, "invalid_request", "an endpoint id", "GET", "/admin/webhooks/short", NULL, NULL);
    s_refused (400, "invalid_request", "no query parameter \"x\"", "GET",
               s_path ("/admin/webhooks/%s", first), "x=1", NULL);
    s_refused (405, "method_not_allowed", NULL, "PUT", s_path ("/admin/webhooks/%s", first), NULL,
               NULL);
    assert_int_equal (s_audits (tenant, "webhook_endpoint_created"), 3);
    //  Nothing was stored by a refusal.
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1", 1,
                                tenant, NULL, NULL), 3);
    free (first);
    free (second);
}

static void
test_rotate (void **state)
{
    const char *tenant = s_tenant ("rot");
    s_create_tenant (tenant);
    const char *old = s_remember ("gh-rotate-old-secret-000000000001");
    json_t *answer = s_endpoint (tenant, "wh-git", "github", NULL, old);
    char *id = strdup (s_str (json_object_get (answer, "endpoint"), "id"));
    json_decref (answer);
    const char *path = s_path ("/admin/webhooks/%s/rotate", id);
    char rotate [256];
    snprintf (rotate, sizeof rotate, "%s", path);

    //  A given secret with a one-hour overlap: the old one is "previous".
    const char *fresh = s_remember ("gh-rotate-new-secret-000000000002");
    char body [256];
    snprintf (body, sizeof body, "{\"secret\":\"%s\",\"overlap_s\":3600}", fresh);
    answer = s_call (200, "POST", rotate, NULL, body, NULL);
    assert_null (json_object_get (answer, "secret"));
    assert_true (json_is_string (json_object_get (json_object_get (answer, "endpoint"),
                                                  "previous_until")));
    json_decref (answer);
    s_assert_sealed ("webhook_endpoints", id, fresh);
    char *previous = s_open_webhook ("webhook_endpoints", id, "previous");
    assert_non_null (previous);
    assert_string_equal (previous, old);
    free (previous);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND"
                                " previous_until BETWEEN now () + interval '3590 s'"
                                " AND now () + interval '3610 s' AND rotated_at IS NOT NULL",
                                1, id, NULL, NULL), 1);
    //  The previous secret is not in the clear either.
    char *stored = s_value ("SELECT encode (previous_enc, 'hex') FROM webhook_endpoints"
                            " WHERE id = $1", 1, id, NULL, NULL);
    char *hex = s_hex (old);
    assert_null (strstr (stored, hex));
    free (hex);
    free (stored);

    //  The default overlap is a day; a generated secret is answered once.
    answer = s_call (200, "POST", rotate, NULL, NULL, NULL);
    const char *generated = s_remember (s_str (answer, "secret"));
    json_decref (answer);
    s_assert_sealed ("webhook_endpoints", id, generated);
    previous = s_open_webhook ("webhook_endpoints", id, "previous");
    assert_string_equal (previous, fresh);
    free (previous);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND"
                                " previous_until BETWEEN now () + interval '86390 s'"
                                " AND now () + interval '86410 s'", 1, id, NULL, NULL), 1);
    //  Overlap 0: the old secret stops at once.
    answer = s_call (200, "POST", rotate, NULL, "{\"overlap_s\":0}", NULL);
    s_remember (s_str (answer, "secret"));
    json_decref (answer);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND"
                                " previous_enc IS NULL AND previous_until IS NULL", 1, id,
                                NULL, NULL), 1);
    assert_int_equal (s_audits (tenant, "webhook_endpoint_rotated"), 3);

    //  A rotation that read an older secret loses (409), the row stays.
    char *key = s_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    char *answer_text = s_value ("SELECT admin_webhook_rotate ($1, md5 ('\\x00'::bytea), $2,"
                                 " '\\xdead'::bytea, NULL, 0)", 2, id, key, NULL);
    assert_non_null (strstr (answer_text, "\"status\": 409"));
    free (answer_text);
    free (key);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND"
                                " secret_enc = '\\xdead'::bytea", 1, id, NULL, NULL), 0);

    //  Refusals.
    s_refused (400, "invalid_request", "\"overlap_s\" must be a whole number from 0 to 2592000",
               "POST", rotate, NULL, "{\"overlap_s\":-1}");
    s_refused (400, "invalid_request", "\"overlap_s\"", "POST", rotate, NULL,
               "{\"overlap_s\":2592001}");
    s_refused (400, "invalid_request", "\"secret\" must be a string", "POST", rotate, NULL,
               "{\"secret\":5}");
    s_refused (400, "invalid_request", "the secret is refused", "POST", rotate, NULL,
               "{\"secret\":\"\"}");
    s_refused (404, "not_found", "there is no webhook endpoint \"we_nothere1\"", "POST",
               "/admin/webhooks/we_nothere1/rotate", NULL, NULL);
    assert_int_equal (s_audits (tenant, "webhook_endpoint_rotated"), 3);
    free (id);
}

static void
test_enable_delete (void **state)
{
    const char *tenant = s_tenant ("del");
    s_create_tenant (tenant);
    json_t *answer = s_endpoint (tenant, "wh-pay", "shopify", NULL, NULL);
    char *id = strdup (s_str (json_object_get (answer, "endpoint"), "id"));
    json_decref (answer);
    answer = s_call (200, "POST", s_path ("/admin/webhooks/%s/disable", id), NULL, NULL, NULL);
    assert_true (json_is_false (json_object_get (json_object_get (answer, "endpoint"), "enabled")));
    json_decref (answer);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND NOT enabled",
                                1, id, NULL, NULL), 1);
    answer = s_call (200, "POST", s_path ("/admin/webhooks/%s/enable", id), NULL, NULL, NULL);
    assert_true (json_is_true (json_object_get (json_object_get (answer, "endpoint"), "enabled")));
    json_decref (answer);
    assert_int_equal (s_audits (tenant, "webhook_endpoint_disabled"), 1);
    assert_int_equal (s_audits (tenant, "webhook_endpoint_enabled"), 1);
    answer = s_call (200, "DELETE", s_path ("/admin/webhooks/%s", id), NULL, NULL, NULL);
    assert_true (json_is_true (json_object_get (answer, "deleted")));
    json_decref (answer);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE id = $1", 1, id,
                                NULL, NULL), 0);
    assert_int_equal (s_audits (tenant, "webhook_endpoint_deleted"), 1);
    s_refused (400, "invalid_request", "takes no body", "DELETE",
               s_path ("/admin/webhooks/%s", id), NULL, "{\"force\":true}");
    s_refused (404, "not_found", "there is no webhook endpoint", "DELETE",
               s_path ("/admin/webhooks/%s", id), NULL, "{}");
    s_refused (404, "not_found", "there is no webhook endpoint", "POST",
               s_path ("/admin/webhooks/%s/disable", id), NULL, NULL);
    free (id);
}

static void
test_subscriptions (void **state)
{
    const char *tenant = s_tenant ("sub");
    s_create_tenant (tenant);
    const char *path = s_path ("/admin/tenants/%s/subscriptions", tenant);
    char subs [256];
    snprintf (subs, sizeof subs, "%s", path);
    json_t *answer = s_call (201, "POST", subs, NULL,
                             "{\"url\":\"https://hooks.example.com/in?x=1\","
                             "\"types\":[\"invoice.*\",\"charge.failed\"],\"connector\":\"wh-pay\","
                             "\"rate_per_s\":5,\"max_in_flight\":2}", NULL);
    json_t *subscription = json_object_get (answer, "subscription");
    char *id = strdup (s_str (subscription, "id"));
    assert_int_equal (strlen (id), 27);
    assert_memory_equal (id, "ws_", 3);
    assert_int_equal (json_integer_value (json_object_get (subscription, "rate_per_s")), 5);
    assert_int_equal (json_integer_value (json_object_get (subscription, "max_in_flight")), 2);
    assert_int_equal (json_array_size (json_object_get (subscription, "types")), 2);
    const char *secret = s_remember (s_str (answer, "secret"));
    assert_int_equal (strlen (secret), 6 + 44);
    assert_memory_equal (secret, "whsec_", 6);
    json_decref (answer);
    s_assert_sealed ("webhook_subscriptions", id, secret);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_subscriptions WHERE id = $1 AND"
                                " event_types = '{invoice.*,charge.failed}' AND connector = 'wh-pay'",
                                1, id, NULL, NULL), 1);
    //  Defaults: every type, every connector, 10/s, 4 at once.
    answer = s_call (201, "POST", subs, NULL, "{\"url\":\"http://10.0.0.1:8080/h\"}", NULL);
    s_remember (s_str (answer, "secret"));
    subscription = json_object_get (answer, "subscription");
    assert_int_equal (json_integer_value (json_object_get (subscription, "rate_per_s")), 10);
    assert_int_equal (json_integer_value (json_object_get (subscription, "max_in_flight")), 4);
    assert_true (json_is_null (json_object_get (subscription, "connector")));
    json_decref (answer);
    assert_int_equal (s_audits (tenant, "webhook_subscribed"), 2);

    json_t *list = s_call (200, "GET", subs, NULL, NULL, NULL);
    assert_int_equal (json_array_size (json_object_get (list, "subscriptions")), 2);
    json_decref (list);

    //  Refusals, each named.
    s_refused (400, "invalid_request", "http:// or https://", "POST", subs, NULL,
               "{\"url\":\"ftp://hooks.example.com/\"}");
    s_refused (400, "invalid_request", "http:// or https://", "POST", subs, NULL,
               "{\"url\":\"javascript:alert(1)\"}");
    s_refused (400, "invalid_request", "user name or password", "POST", subs, NULL,
               "{\"url\":\"https://user:pw@hooks.example.com/\"}");
    s_refused (400, "invalid_request", "no host", "POST", subs, NULL, "{\"url\":\"https:///x\"}");
    s_refused (400, "invalid_request", "space or a control", "POST", subs, NULL,
               "{\"url\":\"https://hooks.example.com/a b\"}");
    s_refused (400, "invalid_request", "fragment", "POST", subs, NULL,
               "{\"url\":\"https://hooks.example.com/#x\"}");
    {
        char big [2200];
        int n = snprintf (big, sizeof big, "{\"url\":\"https://hooks.example.com/");
        memset (big + n, 'a', 2048);
        snprintf (big + n + 2048, sizeof big - (size_t) n - 2048, "\"}");
        s_refused (400, "invalid_request", "longer than 2048", "POST", subs, NULL, big);
    }
    s_refused (400, "invalid_request", "\"url\" must be a string", "POST", subs, NULL, "{}");
    s_refused (400, "invalid_request", "\"*\" only at its end", "POST", subs, NULL,
               "{\"url\":\"https://h.example/\",\"types\":[\"a*b\"]}");
    s_refused (400, "invalid_request", "an event type is a string", "POST", subs, NULL,
               "{\"url\":\"https://h.example/\",\"types\":[\"\"]}");
    s_refused (400, "invalid_request", "\"types\" must be an array", "POST", subs, NULL,
               "{\"url\":\"https://h.example/\",\"types\":\"a\"}");
    s_refused (400, "invalid_request", "\"rate_per_s\"", "POST", subs, NULL,
               "{\"url\":\"https://h.example/\",\"rate_per_s\":0}");
    s_refused (400, "invalid_request", "\"max_in_flight\"", "POST", subs, NULL,
               "{\"url\":\"https://h.example/\",\"max_in_flight\":257}");
    s_refused (404, "not_found", "there is no connector", "POST", subs, NULL,
               "{\"url\":\"https://h.example/\",\"connector\":\"wh-nope\"}");
    s_refused (400, "invalid_request", "unknown member \"secret\"", "POST", subs, NULL,
               "{\"url\":\"https://h.example/\",\"secret\":\"whsec_x\"}");
    s_refused (404, "not_found", "there is no tenant", "POST",
               s_path ("/admin/tenants/%s-nobody/subscriptions", s_prefix), NULL,
               "{\"url\":\"https://h.example/\"}");
    assert_int_equal (s_audits (tenant, "webhook_subscribed"), 2);

    //  Disabled by the deliverer, enabled again by the operator.
    PQclear (s_sql ("UPDATE webhook_subscriptions SET enabled = false, failing_since = now (),"
                    " disabled_at = now (), disabled_reason = 'failing' WHERE id = $1", 1, id,
                    NULL, NULL));
    answer = s_call (200, "POST", s_path ("/admin/subscriptions/%s/enable", id), NULL, NULL, NULL);
    assert_true (json_is_true (json_object_get (json_object_get (answer, "subscription"),
                                                "enabled")));
    json_decref (answer);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_subscriptions WHERE id = $1 AND"
                                " enabled AND disabled_at IS NULL AND failing_since IS NULL"
                                " AND disabled_reason IS NULL", 1, id, NULL, NULL), 1);
    assert_int_equal (s_audits (tenant, "webhook_subscription_enabled"), 1);
    json_decref (s_call (200, "DELETE", s_path ("/admin/subscriptions/%s", id), NULL, NULL, NULL));
    assert_int_equal (s_audits (tenant, "webhook_unsubscribed"), 1);
    s_refused (404, "not_found", "there is no subscription", "DELETE",
               s_path ("/admin/subscriptions/%s", id), NULL, NULL);
    s_refused (404, "not_found", "there is no subscription", "POST",
               s_path ("/admin/subscriptions/%s/enable", id), NULL, NULL);
    free (id);
}

//  Dead letters listed and replayed, attempts, the event log.
static void
test_dead_letters (void **state)
{
    const char *tenant = s_tenant ("dead");
    s_create_tenant (tenant);
    json_t *answer = s_endpoint (tenant, "wh-pay", "github", NULL, NULL);
    char *endpoint = strdup (s_str (json_object_get (answer, "endpoint"), "id"));
    json_decref (answer);
    answer = s_call (201, "POST", s_path ("/admin/tenants/%s/subscriptions", tenant), NULL,
                     "{\"url\":\"https://h.example/in\"}", NULL);
    char *sub = strdup (s_str (json_object_get (answer, "subscription"), "id"));
    s_remember (s_str (answer, "secret"));
    json_decref (answer);
    answer = s_call (201, "POST", s_path ("/admin/tenants/%s/subscriptions", tenant), NULL,
                     "{\"url\":\"https://h.example/off\"}", NULL);
    char *off = strdup (s_str (json_object_get (answer, "subscription"), "id"));
    s_remember (s_str (answer, "secret"));
    json_decref (answer);
    //  Three events of wh-pay and one of wh-git, each dead for `sub`
    //  after 8 attempts; one more dead for the disabled `off`.
    for (int i = 0; i < 4; i++) {
        char key [16];
        snprintf (key, sizeof key, "evt_%d", i);
        PQclear (s_sql ("INSERT INTO webhook_events (tenant_id, endpoint_id, connector, event_key,"
                        " type, body) VALUES ($1, $2, $3, 'k' || $3 || random (), 'invoice.paid',"
                        " '\\x7b7d')", 3, tenant, endpoint, i < 3? "wh-pay": "wh-git"));
    }
    PQclear (s_sql ("INSERT INTO webhook_deliveries (tenant_id, subscription_id, event_id, state,"
                    " attempts, last_status, last_error, finished_at)"
                    " SELECT $1, $2, id, 'dead', 8, 500, 'HTTP 500', now () FROM webhook_events"
                    " WHERE tenant_id = $1", 2, tenant, sub, NULL));
    PQclear (s_sql ("INSERT INTO webhook_deliveries (tenant_id, subscription_id, event_id, state,"
                    " attempts, finished_at) SELECT $1, $2, min (id), 'dead', 8, now ()"
                    " FROM webhook_events WHERE tenant_id = $1", 2, tenant, off, NULL));
    PQclear (s_sql ("UPDATE webhook_subscriptions SET enabled = false, disabled_at = now (),"
                    " disabled_reason = 'failing for days' WHERE id = $1", 1, off, NULL, NULL));
    char *delivery = s_value ("SELECT min (id) FROM webhook_deliveries WHERE subscription_id = $1",
                              1, sub, NULL, NULL);
    char *off_delivery = s_value ("SELECT id FROM webhook_deliveries WHERE subscription_id = $1",
                                  1, off, NULL, NULL);
    PQclear (s_sql ("INSERT INTO webhook_attempts (tenant_id, delivery_id, status, latency_ms,"
                    " error, excerpt) VALUES ($1, $2::bigint, 0, 10000, 'timeout', NULL),"
                    " ($1, $2::bigint, 500, 12, NULL, 'oops')", 2, tenant, delivery, NULL));

    //  The list, newest first, in pages.
    const char *dead_path = s_path ("/admin/tenants/%s/dead-letters", tenant);
    char dead [256];
    snprintf (dead, sizeof dead, "%s", dead_path);
    answer = s_call (200, "GET", dead, NULL, NULL, NULL);
    assert_int_equal (json_array_size (json_object_get (answer, "deliveries")), 5);
    json_decref (answer);
    answer = s_call (200, "GET", dead, "limit=2", NULL, NULL);
    json_t *deliveries = json_object_get (answer, "deliveries");
    assert_int_equal (json_array_size (deliveries), 2);
    assert_true (json_integer_value (json_object_get (json_array_get (deliveries, 0), "id"))
                 > json_integer_value (json_object_get (json_array_get (deliveries, 1), "id")));
    assert_true (json_is_integer (json_object_get (answer, "next_before")));
    json_decref (answer);
    s_refused (400, "invalid_request", "?limit", "GET", dead, "limit=0", NULL);
    s_refused (400, "invalid_request", "no query parameter \"state\"", "GET", dead, "state=x", NULL);

    //  A delivery's attempts.
    answer = s_call (200, "GET", s_path ("/admin/deliveries/%s/attempts", delivery), NULL, NULL,
                     NULL);
    json_t *attempts = json_object_get (answer, "attempts");
    assert_int_equal (json_array_size (attempts), 2);
    assert_string_equal (s_str (json_array_get (attempts, 0), "error"), "timeout");
    assert_string_equal (s_str (json_array_get (attempts, 1), "excerpt"), "oops");
    assert_string_equal (s_str (json_object_get (answer, "delivery"), "state"), "dead");
    json_decref (answer);

    //  Replay one: pending again at once, its attempts kept.
    answer = s_call (200, "POST", s_path ("/admin/deliveries/%s/replay", delivery), NULL, NULL,
                     NULL);
    assert_string_equal (s_str (json_object_get (answer, "delivery"), "state"), "pending");
    json_decref (answer);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_deliveries WHERE id = $1::bigint"
                                " AND state = 'pending' AND attempts = 8 AND finished_at IS NULL"
                                " AND next_at <= now ()", 1, delivery, NULL, NULL), 1);
    s_refused (409, "conflict", "is pending, not dead", "POST",
               s_path ("/admin/deliveries/%s/replay", delivery), NULL, NULL);
    s_refused (409, "conflict", "is disabled", "POST",
               s_path ("/admin/deliveries/%s/replay", off_delivery), NULL, NULL);
    s_refused (404, "not_found", "there is no delivery 999999999", "POST",
               "/admin/deliveries/999999999/replay", NULL, NULL);
    s_refused (400, "invalid_request", "a delivery id", "POST", "/admin/deliveries/x1/replay",
               NULL, NULL);
    s_refused (404, "not_found", "there is no delivery", "GET",
               "/admin/deliveries/999999999/attempts", NULL, NULL);

    //  Replay all: the three others of the enabled subscription move; the
    //  disabled one's stays dead.
    answer = s_call (200, "POST", s_path ("/admin/tenants/%s/dead-letters/replay", tenant), NULL,
                     NULL, NULL);
    assert_int_equal (json_integer_value (json_object_get (answer, "replayed")), 3);
    assert_int_equal (json_integer_value (json_object_get (answer, "remaining")), 1);
    json_decref (answer);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1"
                                " AND state = 'pending' AND attempts = 8", 1, sub, NULL, NULL), 4);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1"
                                " AND state = 'dead'", 1, off, NULL, NULL), 1);
    assert_int_equal (s_audits (tenant, "webhook_replayed"), 2);
    s_refused (404, "not_found", "there is no tenant", "POST",
               s_path ("/admin/tenants/%s-nobody/dead-letters/replay", s_prefix), NULL, NULL);

    //  The event log: by connector, newest first, in pages.
    const char *events_path = s_path ("/admin/tenants/%s/events", tenant);
    char events [256];
    snprintf (events, sizeof events, "%s", events_path);
    answer = s_call (200, "GET", events, NULL, NULL, NULL);
    assert_int_equal (json_array_size (json_object_get (answer, "events")), 4);
    json_decref (answer);
    answer = s_call (200, "GET", events, "connector=wh-pay", NULL, NULL);
    json_t *list = json_object_get (answer, "events");
    assert_int_equal (json_array_size (list), 3);
    assert_string_equal (s_str (json_array_get (list, 0), "type"), "invoice.paid");
    assert_int_equal (json_integer_value (json_object_get (json_array_get (list, 0), "bytes")), 2);
    long long newest = json_integer_value (json_object_get (json_array_get (list, 0), "id"));
    json_decref (answer);
    char query [64];
    snprintf (query, sizeof query, "connector=wh-pay&limit=1&before=%lld", newest);
    answer = s_call (200, "GET", events, query, NULL, NULL);
    list = json_object_get (answer, "events");
    assert_int_equal (json_array_size (list), 1);
    assert_true (json_integer_value (json_object_get (json_array_get (list, 0), "id")) < newest);
    json_decref (answer);
    s_refused (404, "not_found", "there is no connector", "GET", events, "connector=wh-nope", NULL);
    s_refused (400, "invalid_request", "?before", "GET", events, "before=x", NULL);

    //  Deleting the endpoint takes its events (and their deliveries).
    answer = s_call (200, "DELETE", s_path ("/admin/webhooks/%s", endpoint), NULL, NULL, NULL);
    assert_int_equal (json_integer_value (json_object_get (answer, "events")), 4);
    json_decref (answer);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1", 1,
                                tenant, NULL, NULL), 0);
    free (endpoint);
    free (sub);
    free (off);
    free (delivery);
    free (off_delivery);
}

//  A data-key rotation re-seals webhook rows too: open them after with
//  the new key; the old key retires once no row of any table uses it.
static void
test_reseal (void **state)
{
    const char *tenant = s_tenant ("key");
    s_create_tenant (tenant);
    const char *old_secret = s_remember ("gh-reseal-old-secret-00000000003");
    json_t *answer = s_endpoint (tenant, "wh-git", "github", NULL, old_secret);
    char *endpoint = strdup (s_str (json_object_get (answer, "endpoint"), "id"));
    json_decref (answer);
    answer = s_call (200, "POST", s_path ("/admin/webhooks/%s/rotate", endpoint), NULL, NULL, NULL);
    char *secret = strdup (s_remember (s_str (answer, "secret")));
    json_decref (answer);
    answer = s_call (201, "POST", s_path ("/admin/tenants/%s/subscriptions", tenant), NULL,
                     "{\"url\":\"https://h.example/in\"}", NULL);
    char *sub = strdup (s_str (json_object_get (answer, "subscription"), "id"));
    char *sub_secret = strdup (s_remember (s_str (answer, "secret")));
    json_decref (answer);

    char *old = s_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    answer = s_admin (&s_a, 200, "POST", "/admin/connection-keys/rotate", NULL, NULL, NULL);
    char *new_id = strdup (s_str (answer, "current"));
    json_decref (answer);
    assert_string_not_equal (old, new_id);
    //  The key list counts the webhook rows under each key.
    answer = s_admin (&s_a, 200, "GET", "/admin/connection-keys", NULL, NULL, NULL);
    json_t *keys = json_object_get (answer, "keys");
    bool seen = false;
    for (size_t i = 0; i < json_array_size (keys); i++) {
        json_t *key = json_array_get (keys, i);
        if (strcmp (s_str (key, "id"), old) != 0)
            continue;
        seen = true;
        assert_true (json_integer_value (json_object_get (key, "webhook_endpoints")) >= 1);
        assert_true (json_integer_value (json_object_get (key, "webhook_subscriptions")) >= 1);
    }
    assert_true (seen);
    json_decref (answer);

    //  One row per call, then until nothing is left.
    answer = s_admin (&s_a, 200, "POST", "/admin/connection-keys/reseal", "limit=1", NULL, NULL);
    assert_int_equal (json_integer_value (json_object_get (answer, "resealed"))
                      + json_integer_value (json_object_get (answer, "changed")), 1);
    json_decref (answer);
    long long remaining = -1;
    bool retired = false;
    for (int call = 0; call < MAX_RESEALS && remaining != 0; call++) {
        answer = s_admin (&s_a, 200, "POST", "/admin/connection-keys/reseal", NULL, NULL, NULL);
        remaining = json_integer_value (json_object_get (answer, "remaining"));
        assert_int_equal (json_integer_value (json_object_get (answer, "failed")), 0);
        json_t *list = json_object_get (answer, "retired");
        for (size_t i = 0; i < json_array_size (list); i++)
            retired = retired || strcmp (json_string_value (json_array_get (list, i)), old) == 0;
        json_decref (answer);
    }
    assert_int_equal (remaining, 0);
    assert_true (retired);
    //  Every webhook row is under the new key and opens to what it held.
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE key_id <> $1", 1,
                                new_id, NULL, NULL), 0);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_subscriptions WHERE key_id <> $1", 1,
                                new_id, NULL, NULL), 0);
    char *plain = s_open_webhook ("webhook_endpoints", endpoint, "secret");
    assert_string_equal (plain, secret);
    free (plain);
    plain = s_open_webhook ("webhook_endpoints", endpoint, "previous");
    assert_string_equal (plain, old_secret);
    free (plain);
    plain = s_open_webhook ("webhook_subscriptions", sub, "secret");
    assert_string_equal (plain, sub_secret);
    free (plain);
    //  previous_until stayed; each moved row is in its tenant's audit log.
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_endpoints WHERE id = $1"
                                " AND previous_until > now () + interval '86000 s'", 1, endpoint,
                                NULL, NULL), 1);
    assert_int_equal (s_audits (tenant, "webhook_key_rotated"), 2);
    //  A row re-sealed by a reseal that read an older secret loses.
    char *lost = s_value ("SELECT webhook_reseal ('webhook', $1, md5 ('\\x00'::bytea), $2, $2,"
                          " '\\xdead'::bytea, NULL)", 2, endpoint, new_id, NULL);
    assert_string_equal (lost, "f");
    free (lost);
    free (old);
    free (new_id);
    free (endpoint);
    free (secret);
    free (sub);
    free (sub_secret);
}

//  A's log holds no secret of this run, nor the master secret.
static void
test_logs_clean (void **state)
{
    assert_true (s_secret_count > 10);
    FILE *file = fopen (s_a.log, "r");
    assert_non_null (file);
    char master [128] = "";
    FILE *secret_file = fopen (SECRET_FILE, "r");
    assert_non_null (secret_file);
    assert_non_null (fgets (master, sizeof master, secret_file));
    fclose (secret_file);
    master [strcspn (master, "\r\n")] = 0;
    char line [8192];
    int lines = 0;
    while (fgets (line, sizeof line, file)) {
        lines++;
        if (strstr (line, master))
            fail_msg ("the master secret in the log");
        for (int i = 0; i < s_secret_count; i++)
            if (strstr (line, s_secrets [i]))
                fail_msg ("secret %d in the log: %s", i, line);
    }
    fclose (file);
    assert_true (lines > 0);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static void
s_write (const char *name, const char *text)
{
    char path [256];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

#define S_TOOL(name) "\"tools\":[{\"name\":\"" name "\",\"description\":\"d\"," \
    "\"inputSchema\":{\"type\":\"object\"},\"request\":{\"method\":\"GET\",\"path\":\"/v1/x\"}," \
    "\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]}"

static void
s_connectors (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-38-wha-%d", (int) getpid ());
    mkdir (s_dir, 0700);
    s_write ("wh-pay.json", "{\"name\":\"wh-pay\",\"title\":\"P\",\"base_url\":\"http://127.0.0.1:9\","
                            "\"auth\":{\"type\":\"none\"}," S_TOOL ("wh_pay_t"));
    s_write ("wh-git.json", "{\"name\":\"wh-git\",\"title\":\"G\",\"base_url\":\"http://127.0.0.1:9\","
                            "\"auth\":{\"type\":\"none\"}," S_TOOL ("wh_git_t"));
}

static int
s_proc_start (s_proc_t *proc, const char *name)
{
    proc->broker = fake_broker_new (sb_harness_free_port ());
    if (!proc->broker)
        return -1;
    snprintf (proc->log, sizeof proc->log, "/tmp/sb-38-wha-%d-%s.log", (int) getpid (), name);
    char heartbeat [16], db [1024], migrations [512], connectors [128];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    snprintf (connectors, sizeof connectors, "--connectors=%s", s_dir);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", proc->broker->endpoint,
        "--credit", "4", "--heartbeat-ms", heartbeat, "--hash-threads", "1", db, migrations,
        "--secret-key-file=" SECRET_FILE, connectors, "--log-level", "debug", NULL
    };
    //  Its stderr (the log) goes to a file: spawned with fd 2 on it.
    int log_fd = open (proc->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (log_fd < 0)
        return -1;
    int saved = dup (2);
    fflush (stderr);
    dup2 (log_fd, 2);
    proc->pid = sb_harness_spawn (argv, NULL);
    dup2 (saved, 2);
    close (saved);
    close (log_fd);
    if (proc->pid <= 0)
        return -1;
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (proc->broker, &msg, 30000) || msg.command != SB_CMD_READY)
        return -1;
    sb_msg_reset (&msg);
    return 0;
}

static int
s_in_start_worker (void)
{
    s_in.pid = -1;
    s_in.broker = fake_broker_new (sb_harness_free_port ());
    if (!s_in.broker)
        return -1;
    s_in_worker = sb_worker_new (s_in.broker->endpoint, "token", 4, HEARTBEAT_MS);
    if (!s_in_worker)
        return -1;
    char migrations [512];
    snprintf (migrations, sizeof migrations, "%s/db/migrations", SB_SOURCE_DIR);
    sb_token_config_t config = {
        .conninfo = s_conninfo, .migrations_dir = migrations, .issuer = "",
        .secret_key_file = SECRET_FILE, .connectors_dir = s_dir, .hash_threads = 1
    };
    s_in_role = sb_token_role_new (s_in_worker, &config);
    if (!s_in_role)
        return -1;
    sb_worker_set_role (s_in_worker, &s_in_ops, s_in_role);
    if (pthread_create (&s_in_thread, NULL, s_in_run, NULL))
        return -1;
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (s_in.broker, &msg, 30000) || msg.command != SB_CMD_READY)
        return -1;
    sb_msg_reset (&msg);
    return 0;
}

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "wha%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    s_pg = PQconnectdb (s_conninfo);
    if (PQstatus (s_pg) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (s_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    s_connectors ();
    if (s_proc_start (&s_a, "a") || s_in_start_worker ())
        return -1;
    return 0;
}

static int
s_teardown (void **state)
{
    bool clean = true;
    s_proc_t *procs [] = { &s_a };
    for (int i = 0; i < 1; i++) {
        if (procs [i]->pid > 0) {
            int wstatus = sb_harness_stop (procs [i]->pid);
            if (!WIFEXITED (wstatus) || WEXITSTATUS (wstatus) != 0) {
                fprintf (stderr, "token worker %d did not exit cleanly (0x%x)\n", i, (unsigned) wstatus);
                clean = false;
            }
        }
        fake_broker_destroy (&procs [i]->broker);
        unlink (procs [i]->log);
    }
    if (s_in_worker && s_in.broker && s_in.broker->worker) {
        char corr_id [32];
        s_send (&s_in, "test/stop", NULL, corr_id);
        sb_status_t status;
        free (s_wait (&s_in, corr_id, &status));
        void *rc = NULL;
        pthread_join (s_in_thread, &rc);
    }
    sb_token_role_destroy (&s_in_role);
    sb_worker_destroy (&s_in_worker);
    fake_broker_destroy (&s_in.broker);
    int rc = -1;
    if (s_pg && PQstatus (s_pg) == CONNECTION_OK) {
        char pattern [48];
        snprintf (pattern, sizeof pattern, "%s-%%", s_prefix);
        const char *params [] = { pattern };
        PGresult *res = PQexecParams (s_pg, "DELETE FROM tenants WHERE id LIKE $1",
                                      1, NULL, params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
        PQclear (res);
    }
    PQfinish (s_pg);
    const char *names [] = { "wh-pay.json", "wh-git.json" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        char path [256];
        snprintf (path, sizeof path, "%s/%s", s_dir, names [i]);
        unlink (path);
    }
    rmdir (s_dir);
    for (int i = 0; i < s_secret_count; i++)
        free (s_secrets [i]);
    free (s_conninfo);
    return clean ? rc : -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_endpoints),
        cmocka_unit_test (test_rotate),
        cmocka_unit_test (test_enable_delete),
        cmocka_unit_test (test_subscriptions),
        cmocka_unit_test (test_dead_letters),
        cmocka_unit_test (test_reseal),
        cmocka_unit_test (test_logs_clean),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
