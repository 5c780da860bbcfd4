/*  tests/38_workers_conn_keys.c — the data keys that seal connection
    secrets (workers/sb_conn_keys.c), storing connections and the admin
    API's connection routes (workers/sb_conn_admin.c, migration 011), with
    two sb-worker --role token processes (A, B) and one in-process token
    worker (test ops that seal and open through the role) against fake
    brokers and the real test PostgreSQL:

      - two workers that find no current key at once end with one, the same;
      - seal and open round trip; another column, tenant or connector, an
        altered byte, a key not in the ring: nothing opens; the size limit;
        libpq's bytea text both ways;
      - an API key stored by PUT opens with its row's associated data; the
        same ciphertext copied into another tenant's row does not;
      - the admin routes and their refusals (unknown tenant or connector,
        an OAuth or shared connector, a missing, empty, oversize or
        multi-line api_key, unknown members, bad JSON), audit rows;
      - rotation: rows under the old key stay readable midway, reseal moves
        them in batches, a row whose version moved is never overwritten,
        the old key is retired when no row uses it;
      - no API key and no master secret in either worker's log.

    connection_keys is one table for the whole cluster: every test that
    seals connection secrets uses the same master secret,
    tests/fixtures/conn-master-secret. Tenants of this run carry a prefix
    unique to it and are deleted at the end. */
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

#define HEARTBEAT_MS    20000       /* long: the test talks to one worker while the others wait */
#define WAIT_MS         15000       /* a RESULT, at most */
#define SECRET_FILE     SB_SOURCE_DIR "/tests/fixtures/conn-master-secret"
#define MAX_KEYS        64          /* API keys this run stores (searched for in the logs) */
#define MAX_RESEALS     50          /* reseal calls until nothing is left, at most */

typedef struct {
    fake_broker_t *broker;
    pid_t pid;                      /* -1: in-process */
    char log [128];                 /* its stderr */
} s_proc_t;

static s_proc_t s_a, s_b, s_in;
static sb_worker_t *s_in_worker;
static sb_token_role_t *s_in_role;
static pthread_t s_in_thread;
static char s_prefix [32];
static char *s_conninfo;
static PGconn *s_pg;
static char s_dir [64];             /* the connectors of this run */
static int s_seq;
static char *s_keys [MAX_KEYS];     /* every API key stored */
static int s_key_count;

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

//  A new API key of this run, remembered for the log check.
static const char *
s_new_key (const char *what)
{
    assert_true (s_key_count < MAX_KEYS);
    char key [128];
    snprintf (key, sizeof key, "ck-apikey-%s-%s-%d", s_prefix, what, s_key_count);
    s_keys [s_key_count] = strdup (key);
    return s_keys [s_key_count++];
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

//  Stores `key` as `tenant`'s API key for `connector` through A: `want`
//  201 or 200. Returns the connection (new).
static json_t *
s_put (const char *tenant, const char *connector, const char *key, int want)
{
    char body [256];
    snprintf (body, sizeof body, "{\"api_key\":\"%s\"}", key);
    char *text = NULL;
    json_t *json = s_admin (&s_a, want, "PUT", s_path ("/admin/tenants/%s/connections/%s", tenant,
                                                       connector), NULL, body, &text);
    assert_null (strstr (text, key));
    free (text);
    json_t *connection = json_incref (json_object_get (json, "connection"));
    json_decref (json);
    assert_non_null (connection);
    return connection;
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

//  Seals `plain` for tenant/connector/column in-process: the key id and
//  the bytea text into the caller's buffers.
static void
s_seal (const char *tenant, const char *connector, const char *column, const char *plain,
        char key_id [64], char **sealed)
{
    json_t *data = json_pack ("{s:s, s:s, s:s, s:s}", "tenant", tenant, "connector", connector,
                              "column", column, "plain", plain);
    char *text = json_dumps (data, JSON_COMPACT);
    json_decref (data);
    sb_status_t status;
    json_t *result = s_op (&s_in, "test/seal", text, &status);
    free (text);
    assert_int_equal (status, SB_STATUS_OK);
    snprintf (key_id, 64, "%s", s_str (result, "key_id"));
    *sealed = strdup (s_str (result, "sealed"));
    json_decref (result);
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

//  Opens `tenant`'s stored `connector` row (access) in-process.
static char *
s_open_row (const char *tenant, const char *connector)
{
    PGresult *res = s_sql ("SELECT key_id, access_token_enc FROM connections"
                           " WHERE tenant_id = $1 AND connector = $2", 2, tenant, connector, NULL);
    assert_int_equal (PQntuples (res), 1);
    sb_status_t status;
    char *plain = s_open (PQgetvalue (res, 0, 0), tenant, connector, "access",
                          PQgetvalue (res, 0, 1), &status);
    PQclear (res);
    assert_int_equal (status, SB_STATUS_OK);
    return plain;
}

//  ---------------------------------------------------------------------
//  Tests

//  Two workers that find no current key at once: one is made, both use it.
static void
test_first_key_race (void **state)
{
    //  Any key made before stays (every ring keeps it); none is current.
    PQclear (s_sql ("UPDATE connection_keys SET current = false WHERE current", 0, NULL, NULL, NULL));
    char *a_data = s_admin_encode ("GET", "/admin/connection-keys", NULL, NULL);
    char a_id [32], b_id [32];
    s_send (&s_a, "admin/http", a_data, a_id);
    s_send (&s_b, "admin/http", a_data, b_id);
    free (a_data);
    sb_status_t status;
    int http_a = 0, http_b = 0;
    char *a = s_wait (&s_a, a_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    char *b = s_wait (&s_b, b_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    json_t *ja = s_admin_answer ("a", a, &http_a, NULL);
    json_t *jb = s_admin_answer ("b", b, &http_b, NULL);
    free (a);
    free (b);
    assert_int_equal (http_a, 200);
    assert_int_equal (http_b, 200);
    assert_string_equal (s_str (ja, "current"), s_str (jb, "current"));
    assert_int_equal (strlen (s_str (ja, "current")), SB_CONN_KEY_ID_LEN);
    assert_int_equal (s_number ("SELECT count(*) FROM connection_keys WHERE current", 0, NULL, NULL,
                                NULL), 1);
    char *current = s_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    assert_string_equal (current, s_str (ja, "current"));
    //  The list shows it current, with no key material.
    json_t *first = json_array_get (json_object_get (ja, "keys"), 0);
    assert_string_equal (s_str (first, "id"), current);
    assert_true (json_is_true (json_object_get (first, "current")));
    assert_null (json_object_get (first, "sealed_key"));
    free (current);
    json_decref (ja);
    json_decref (jb);
}

static void
test_seal_open (void **state)
{
    const char *t1 = s_tenant ("seal1"), *t2 = s_tenant ("seal2");
    char key_id [64], *sealed = NULL;
    s_seal (t1, "ck-key", "access", "tok-secret-value", key_id, &sealed);
    sb_status_t status;
    char *plain = s_open (key_id, t1, "ck-key", "access", sealed, &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (plain, "tok-secret-value");
    free (plain);
    //  The associated data binds tenant, connector and column.
    assert_null (s_open (key_id, t1, "ck-key", "refresh", sealed, &status));
    assert_null (s_open (key_id, t2, "ck-key", "access", sealed, &status));
    assert_null (s_open (key_id, t1, "ck-header", "access", sealed, &status));
    //  Any byte changed (here the last hex digit, in the tag).
    char *altered = strdup (sealed);
    size_t len = strlen (altered);
    altered [len - 1] = altered [len - 1] == '0'? '1': '0';
    assert_null (s_open (key_id, t1, "ck-key", "access", altered, &status));
    free (altered);
    //  A key the table does not hold: the job fails with a sentence.
    json_t *result = NULL;
    free (s_open ("AAAAAAAAAAAAAAAA", t1, "ck-key", "access", sealed, &status));
    assert_int_not_equal (status, SB_STATUS_OK);
    free (sealed);
    //  The limit: SB_MAX_CONN_SECRET seals (and opens), one more does not.
    for (int extra = 0; extra <= 1; extra++) {
        json_t *data = json_pack ("{s:s, s:s, s:s, s:i}", "tenant", t1, "connector", "ck-key",
                                  "column", "access", "repeat", SB_MAX_CONN_SECRET + extra);
        char *text = json_dumps (data, JSON_COMPACT);
        json_decref (data);
        result = s_op (&s_in, "test/seal", text, &status);
        free (text);
        assert_int_equal (status, SB_STATUS_OK);
        if (extra)
            assert_true (json_is_null (json_object_get (result, "sealed")));
        else {
            plain = s_open (s_str (result, "key_id"), t1, "ck-key", "access",
                            s_str (result, "sealed"), &status);
            assert_non_null (plain);
            assert_int_equal (strlen (plain), SB_MAX_CONN_SECRET);
            free (plain);
        }
        json_decref (result);
    }
    //  Without a job: the current key.
    result = s_op (&s_in, "test/plain", "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    char *current = s_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    assert_string_equal (s_str (result, "key_id"), current);
    free (current);
    json_decref (result);
    result = s_op (&s_in, "test/plain", "{\"need_id\":\"BBBBBBBBBBBBBBBB\"}", &status);
    assert_int_not_equal (status, SB_STATUS_OK);
    json_decref (result);

    //  libpq's bytea text, both ways.
    const uint8_t bytes [] = { 0x00, 0xab, 0x7f };
    char *text = sb_conn_bytea_text (bytes, sizeof bytes);
    assert_string_equal (text, "\\x00ab7f");
    size_t back_len = 0;
    uint8_t *back = sb_conn_bytea_parse (text, &back_len);
    assert_int_equal (back_len, 3);
    assert_memory_equal (back, bytes, 3);
    free (back);
    free (text);
    back = sb_conn_bytea_parse ("\\xAB", &back_len);
    assert_non_null (back);
    assert_int_equal (back [0], 0xab);
    free (back);
    back = sb_conn_bytea_parse ("\\x", &back_len);
    assert_non_null (back);
    assert_int_equal (back_len, 0);
    free (back);
    assert_null (sb_conn_bytea_parse ("\\x0", &back_len));
    assert_null (sb_conn_bytea_parse ("00ab", &back_len));
    assert_null (sb_conn_bytea_parse ("\\xzz", &back_len));
    assert_null (sb_conn_bytea_parse (NULL, &back_len));
}

static void
test_admin_connections (void **state)
{
    const char *t1 = s_tenant ("adm1");
    char t2 [64];
    snprintf (t2, sizeof t2, "%s", s_tenant ("adm2"));
    s_create_tenant (t1);
    s_create_tenant (t2);
    char *current = s_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    const char *k1 = s_new_key ("one"), *k2 = s_new_key ("two"), *k3 = s_new_key ("three");
    json_t *c = s_put (t1, "ck-key", k1, 201);
    assert_string_equal (s_str (c, "kind"), "api_key");
    assert_string_equal (s_str (c, "status"), "connected");
    assert_string_equal (s_str (c, "connected_by"), "admin");
    assert_string_equal (s_str (c, "key_id"), current);
    assert_int_equal (json_integer_value (json_object_get (c, "version")), 1);
    json_decref (c);
    c = s_put (t1, "ck-key", k2, 200);
    assert_int_equal (json_integer_value (json_object_get (c, "version")), 2);
    json_decref (c);
    json_decref (s_put (t1, "ck-header", k3, 201));
    free (current);

    //  The list: exactly these members, never a secret.
    char *text = NULL;
    json_t *list = s_admin (&s_b, 200, "GET", s_path ("/admin/tenants/%s/connections", t1), NULL,
                            NULL, &text);
    assert_null (strstr (text, k1));
    assert_null (strstr (text, k2));
    assert_null (strstr (text, k3));
    assert_null (strstr (text, "\\\\x"));
    free (text);
    json_t *connections = json_object_get (list, "connections");
    assert_int_equal (json_array_size (connections), 2);
    assert_string_equal (s_str (json_array_get (connections, 0), "connector"), "ck-header");
    assert_string_equal (s_str (json_array_get (connections, 1), "connector"), "ck-key");
    const char *members [] = { "connector", "kind", "status", "status_detail", "scopes",
                               "expires_at", "version", "refreshed_at", "key_id", "connected_by",
                               "created_at", "updated_at" };
    json_t *one = json_array_get (connections, 1);
    assert_int_equal (json_object_size (one), sizeof members / sizeof members [0]);
    for (size_t i = 0; i < sizeof members / sizeof members [0]; i++)
        if (!json_object_get (one, members [i]))
            fail_msg ("the list lacks \"%s\"", members [i]);
    json_decref (list);

    //  What is stored opens to the key, with its own row's associated data.
    char *plain = s_open_row (t1, "ck-key");
    assert_string_equal (plain, k2);
    free (plain);
    //  The ciphertext copied into another tenant's row does not open there.
    json_decref (s_put (t2, "ck-key", s_new_key ("other"), 201));
    PQclear (s_sql ("UPDATE connections SET access_token_enc = (SELECT access_token_enc"
                    "  FROM connections WHERE tenant_id = $1 AND connector = 'ck-key'),"
                    " key_id = (SELECT key_id FROM connections WHERE tenant_id = $1"
                    "  AND connector = 'ck-key')"
                    " WHERE tenant_id = $2 AND connector = 'ck-key'", 2, t1, t2, NULL));
    assert_null (s_open_row (t2, "ck-key"));
    //  (A row that opens under no key would stay under its key through
    //  every reseal: the operator deletes it.)
    json_decref (s_admin (&s_a, 200, "DELETE", s_path ("/admin/tenants/%s/connections/ck-key", t2),
                          NULL, NULL, NULL));

    //  Refusals.
    char big [SB_MAX_CONN_SECRET + 64];
    memcpy (big, "{\"api_key\":\"", 12);
    memset (big + 12, 'k', SB_MAX_CONN_SECRET + 1);
    snprintf (big + 12 + SB_MAX_CONN_SECRET + 1, 8, "\"}");
    const char *put = s_path ("/admin/tenants/%s/connections/ck-key", t1);
    char put_path [256];
    snprintf (put_path, sizeof put_path, "%s", put);
    s_refused (400, "invalid_request", "16384", "PUT", put_path, NULL, big);
    s_refused (400, "invalid_request", "required", "PUT", put_path, NULL, "{}");
    s_refused (400, "invalid_request", "required", "PUT", put_path, NULL, "{\"api_key\":5}");
    s_refused (400, "invalid_request", "empty", "PUT", put_path, NULL, "{\"api_key\":\"\"}");
    s_refused (400, "invalid_request", "line break", "PUT", put_path, NULL,
               "{\"api_key\":\"abc\\ndef\"}");
    s_refused (400, "invalid_request", "unknown member", "PUT", put_path, NULL,
               "{\"api_key\":\"abc\",\"more\":1}");
    s_refused (400, "invalid_json", NULL, "PUT", put_path, NULL, "{\"api_key\":");
    s_refused (400, "invalid_json", NULL, "PUT", put_path, NULL,
               "{\"api_key\":\"a\",\"api_key\":\"b\"}");
    s_refused (404, "not_found", "no tenant", "PUT",
               s_path ("/admin/tenants/%s-none/connections/ck-key", s_prefix), NULL,
               "{\"api_key\":\"abc\"}");
    s_refused (400, "invalid_request", "tenant id", "PUT", "/admin/tenants/Bad!/connections/ck-key",
               NULL, "{\"api_key\":\"abc\"}");
    s_refused (404, "not_found", "no connector \"ck-nope\"", "PUT",
               s_path ("/admin/tenants/%s/connections/ck-nope", t1), NULL, "{\"api_key\":\"abc\"}");
    s_refused (409, "conflict", "/connect/ck-oauth", "PUT",
               s_path ("/admin/tenants/%s/connections/ck-oauth", t1), NULL, "{\"api_key\":\"abc\"}");
    s_refused (409, "conflict", "shared", "PUT",
               s_path ("/admin/tenants/%s/connections/ck-shared", t1), NULL, "{\"api_key\":\"abc\"}");
    s_refused (405, "method_not_allowed", NULL, "POST",
               s_path ("/admin/tenants/%s/connections", t1), NULL, "{}");
    s_refused (400, "invalid_request", "no query parameter", "GET",
               s_path ("/admin/tenants/%s/connections", t1), "x=1", NULL);
    s_refused (400, "invalid_request", "?limit", "POST", "/admin/connection-keys/reseal",
               "limit=0", NULL);
    s_refused (400, "invalid_request", "no body", "POST", "/admin/connection-keys/rotate", NULL,
               "{\"x\":1}");
    s_refused (404, "not_found", "no tenant", "GET",
               s_path ("/admin/tenants/%s-none/connections", s_prefix), NULL, NULL);
    //  Nothing refused changed the row (version 2, the second key).
    assert_int_equal (s_number ("SELECT version FROM connections WHERE tenant_id = $1"
                                " AND connector = 'ck-key'", 1, t1, NULL, NULL), 2);
    plain = s_open_row (t1, "ck-key");
    assert_string_equal (plain, k2);
    free (plain);
    //  The largest key is taken.
    memset (big + 12, 'k', SB_MAX_CONN_SECRET);
    snprintf (big + 12 + SB_MAX_CONN_SECRET, 8, "\"}");
    json_decref (s_admin (&s_a, 200, "PUT", put_path, NULL, big, NULL));
    json_decref (s_put (t1, "ck-key", k2, 200));

    //  Delete: once, then not found.
    json_t *deleted = s_admin (&s_a, 200, "DELETE", s_path ("/admin/tenants/%s/connections/ck-header",
                                                            t1), NULL, NULL, NULL);
    assert_true (json_is_true (json_object_get (deleted, "deleted")));
    json_decref (deleted);
    s_refused (404, "not_found", "no connection to \"ck-header\"", "DELETE",
               s_path ("/admin/tenants/%s/connections/ck-header", t1), NULL, NULL);
    s_refused (400, "invalid_request", "connector name", "DELETE",
               s_path ("/admin/tenants/%s/connections/a%%20b", t1), NULL, NULL);

    //  The audit log: who did what, never a secret.
    assert_int_equal (s_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND actor = 'admin'"
                                " AND action = 'connection_connected'", 1, t1, NULL, NULL), 5);
    assert_int_equal (s_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND actor = 'admin'"
                                " AND action = 'connection_deleted' AND detail->>'connector' = 'ck-header'",
                                1, t1, NULL, NULL), 1);
    assert_int_equal (s_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1"
                                " AND (detail::text LIKE '%' || $2 || '%' OR detail::text LIKE '%' || $3 || '%')",
                                3, t1, k1, k2), 0);
}

//  One reseal call through `proc`: its answer (new).
static json_t *
s_reseal (s_proc_t *proc, const char *query)
{
    json_t *answer = s_admin (proc, 200, "POST", "/admin/connection-keys/reseal", query, NULL, NULL);
    assert_non_null (json_object_get (answer, "remaining"));
    assert_non_null (json_object_get (answer, "resealed"));
    assert_true (json_is_array (json_object_get (answer, "retired")));
    return answer;
}

static bool
s_listed (const json_t *array, const char *id)
{
    for (size_t i = 0; i < json_array_size (array); i++)
        if (strcmp (json_string_value (json_array_get (array, i)), id) == 0)
            return true;
    return false;
}

static void
test_rotation (void **state)
{
    enum { ROWS = 4 };
    char tenants [ROWS][64];
    const char *keys [ROWS];
    for (int i = 0; i < ROWS; i++) {
        char name [16];
        snprintf (name, sizeof name, "rot%d", i);
        snprintf (tenants [i], sizeof tenants [i], "%s", s_tenant (name));
        s_create_tenant (tenants [i]);
        keys [i] = s_new_key (name);
        json_decref (s_put (tenants [i], "ck-key", keys [i], 201));
    }
    char *old = s_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    json_t *rotated = s_admin (&s_a, 200, "POST", "/admin/connection-keys/rotate", NULL, NULL, NULL);
    assert_string_equal (s_str (rotated, "previous"), old);
    char *new_id = strdup (s_str (rotated, "current"));
    json_decref (rotated);
    assert_string_not_equal (new_id, old);
    char *current = s_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    assert_string_equal (current, new_id);
    free (current);

    //  Midway: the rows under the old key still open.
    for (int i = 0; i < ROWS; i++) {
        char *plain = s_open_row (tenants [i], "ck-key");
        assert_string_equal (plain, keys [i]);
        free (plain);
    }
    //  A new key sealed by the rotating worker goes under the new key.
    const char *fresh = s_tenant ("rotnew");
    s_create_tenant (fresh);
    json_t *c = s_put (fresh, "ck-key", s_new_key ("fresh"), 201);
    assert_string_equal (s_str (c, "key_id"), new_id);
    json_decref (c);

    //  One small batch: two rows move, the others wait, the old key stays.
    json_t *answer = s_reseal (&s_b, "limit=2");
    assert_string_equal (s_str (answer, "current"), new_id);
    assert_int_equal (json_integer_value (json_object_get (answer, "resealed"))
                      + json_integer_value (json_object_get (answer, "changed")), 2);
    assert_true (json_integer_value (json_object_get (answer, "remaining")) >= 1);
    assert_false (s_listed (json_object_get (answer, "retired"), old));
    json_decref (answer);
    for (int i = 0; i < ROWS; i++) {
        char *plain = s_open_row (tenants [i], "ck-key");
        assert_string_equal (plain, keys [i]);
        free (plain);
    }

    //  A refresh meanwhile: the last row gets a new credential (version+1)
    //  under the new key; a reseal of what was read before must not win.
    const char *last = tenants [ROWS - 1];
    char *version = s_value ("SELECT version FROM connections WHERE tenant_id = $1"
                             " AND connector = 'ck-key'", 1, last, NULL, NULL);
    char *id = s_value ("SELECT id FROM connections WHERE tenant_id = $1 AND connector = 'ck-key'",
                        1, last, NULL, NULL);
    char *row_key = s_value ("SELECT key_id FROM connections WHERE id = $1", 1, id, NULL, NULL);
    char key_id [64], *sealed = NULL;
    const char *refreshed = s_new_key ("refreshed");
    //  (under the key the in-process worker holds as current: it may have
    //  read the old one less than SB_OAUTH_KEY_CHECK_MS ago, as any worker
    //  may; such a row is re-sealed below like the others)
    s_seal (last, "ck-key", "access", refreshed, key_id, &sealed);
    PQclear (s_sql ("SELECT * FROM connection_store ($1, 'ck-key', 'api_key', $2::bytea, NULL, $3,"
                    " NULL, NULL, NULL, 'user:test')", 3, last, sealed, key_id));
    free (sealed);
    {
        const char *params [] = { id, version, row_key, new_id };
        PGresult *res = PQexecParams (s_pg, "SELECT connection_reseal ($1::bigint, $2::bigint, $3, $4,"
                                      " '\\xdead'::bytea, NULL)", 4, NULL, params, NULL, NULL, 0);
        assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
        assert_string_equal (PQgetvalue (res, 0, 0), "f");
        PQclear (res);
    }
    char *plain = s_open_row (last, "ck-key");
    assert_string_equal (plain, refreshed);
    free (plain);
    assert_int_equal (s_number ("SELECT version FROM connections WHERE id = $1", 1, id, NULL, NULL),
                      strtoll (version, NULL, 10) + 1);
    free (version);
    free (row_key);

    //  Reseal until nothing is left (as sb-admin connection-keys rotate does).
    bool retired = false;
    long long remaining = -1;
    for (int call = 0; call < MAX_RESEALS && remaining != 0; call++) {
        answer = s_reseal (call % 2? &s_a: &s_b, NULL);
        remaining = json_integer_value (json_object_get (answer, "remaining"));
        retired = retired || s_listed (json_object_get (answer, "retired"), old);
        assert_int_equal (json_integer_value (json_object_get (answer, "failed")), 0);
        json_decref (answer);
    }
    assert_int_equal (remaining, 0);
    assert_true (retired);
    assert_int_equal (s_number ("SELECT count(*) FROM connection_keys WHERE id = $1"
                                " AND retired_at IS NOT NULL AND NOT current", 1, old, NULL, NULL), 1);
    //  Every row is under the new key, opens to its own key, kept its version.
    for (int i = 0; i < ROWS; i++) {
        char *row_key_id = s_value ("SELECT key_id FROM connections WHERE tenant_id = $1"
                                    " AND connector = 'ck-key'", 1, tenants [i], NULL, NULL);
        assert_string_equal (row_key_id, new_id);
        free (row_key_id);
        plain = s_open_row (tenants [i], "ck-key");
        assert_string_equal (plain, i == ROWS - 1? refreshed: keys [i]);
        free (plain);
        assert_int_equal (s_number ("SELECT version FROM connections WHERE tenant_id = $1"
                                    " AND connector = 'ck-key'", 1, tenants [i], NULL, NULL),
                          i == ROWS - 1? 2: 1);
    }
    //  Each moved row is in its tenant's audit log.
    assert_int_equal (s_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1"
                                " AND action = 'connection_key_rotated' AND detail->>'from' = $2"
                                " AND detail->>'to' = $3", 3, tenants [0], old, new_id), 1);
    //  The key list shows the old key retired, no row under it.
    json_t *list = s_admin (&s_b, 200, "GET", "/admin/connection-keys", NULL, NULL, NULL);
    assert_string_equal (s_str (list, "current"), new_id);
    json_t *keys_list = json_object_get (list, "keys");
    bool seen = false;
    for (size_t i = 0; i < json_array_size (keys_list); i++) {
        json_t *key = json_array_get (keys_list, i);
        if (strcmp (s_str (key, "id"), old) != 0)
            continue;
        seen = true;
        assert_true (json_is_false (json_object_get (key, "current")));
        assert_true (json_is_string (json_object_get (key, "retired_at")));
        assert_int_equal (json_integer_value (json_object_get (key, "connections")), 0);
    }
    assert_true (seen);
    json_decref (list);
    free (id);
    free (old);
    free (new_id);
}

//  Neither worker's log holds an API key or the master secret.
static void
s_log_clean (const char *path)
{
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char secret [128] = "";
    FILE *secret_file = fopen (SECRET_FILE, "r");
    assert_non_null (secret_file);
    assert_non_null (fgets (secret, sizeof secret, secret_file));
    fclose (secret_file);
    secret [strcspn (secret, "\r\n")] = 0;
    char line [8192];
    int lines = 0;
    while (fgets (line, sizeof line, file)) {
        lines++;
        if (strstr (line, secret))
            fail_msg ("%s: the master secret in the log", path);
        for (int i = 0; i < s_key_count; i++)
            if (strstr (line, s_keys [i]))
                fail_msg ("%s: API key %d in the log: %s", path, i, line);
        if (strstr (line, "kkkkkkkkkkkkkkkk"))
            fail_msg ("%s: the largest API key in the log", path);
    }
    fclose (file);
    assert_true (lines > 0);
}

static void
test_logs_clean (void **state)
{
    assert_true (s_key_count > 5);
    s_log_clean (s_a.log);
    s_log_clean (s_b.log);
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
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-38-ck-%d", (int) getpid ());
    mkdir (s_dir, 0700);
    s_write ("ck-key.json", "{\"name\":\"ck-key\",\"title\":\"K\",\"base_url\":\"http://127.0.0.1:9\","
                            "\"auth\":{\"type\":\"bearer\",\"credential\":\"tenant\"}," S_TOOL ("ck_key_t"));
    s_write ("ck-header.json", "{\"name\":\"ck-header\",\"title\":\"H\",\"base_url\":\"http://127.0.0.1:9\","
                               "\"auth\":{\"type\":\"api_key_header\",\"header\":\"X-API-Key\"},"
                               S_TOOL ("ck_header_t"));
    s_write ("ck-oauth.json", "{\"name\":\"ck-oauth\",\"title\":\"O\",\"base_url\":\"http://127.0.0.1:9\","
                              "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"/oauth/authorize\","
                              "\"token_url\":\"/oauth/token\",\"client_id_env\":\"CK_TEST_CLIENT_ID\"}},"
                              S_TOOL ("ck_oauth_t"));
    s_write ("ck-shared.json", "{\"name\":\"ck-shared\",\"title\":\"S\",\"base_url\":\"http://127.0.0.1:9\","
                               "\"auth\":{\"type\":\"bearer\",\"credential\":\"shared\","
                               "\"token_env\":\"CK_TEST_SHARED_TOKEN\"}," S_TOOL ("ck_shared_t"));
}

static int
s_proc_start (s_proc_t *proc, const char *name)
{
    proc->broker = fake_broker_new (sb_harness_free_port ());
    if (!proc->broker)
        return -1;
    snprintf (proc->log, sizeof proc->log, "/tmp/sb-38-ck-%d-%s.log", (int) getpid (), name);
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
    snprintf (s_prefix, sizeof s_prefix, "ck%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    s_pg = PQconnectdb (s_conninfo);
    if (PQstatus (s_pg) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (s_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    setenv ("CK_TEST_CLIENT_ID", "ck-client", 1);
    setenv ("CK_TEST_SHARED_TOKEN", "ck-shared-token", 1);
    s_connectors ();
    if (s_proc_start (&s_a, "a") || s_proc_start (&s_b, "b") || s_in_start_worker ())
        return -1;
    return 0;
}

static int
s_teardown (void **state)
{
    bool clean = true;
    s_proc_t *procs [] = { &s_a, &s_b };
    for (int i = 0; i < 2; i++) {
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
    const char *names [] = { "ck-key.json", "ck-header.json", "ck-oauth.json", "ck-shared.json" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++) {
        char path [256];
        snprintf (path, sizeof path, "%s/%s", s_dir, names [i]);
        unlink (path);
    }
    rmdir (s_dir);
    for (int i = 0; i < s_key_count; i++)
        free (s_keys [i]);
    free (s_conninfo);
    return clean ? rc : -1;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_first_key_race),
        cmocka_unit_test (test_seal_open),
        cmocka_unit_test (test_admin_connections),
        cmocka_unit_test (test_rotation),
        cmocka_unit_test (test_logs_clean),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
