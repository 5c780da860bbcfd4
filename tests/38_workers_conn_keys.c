/*  tests/38_workers_conn_keys.c — the data keys that seal connection
    secrets (workers/sb_conn_keys.c), storing connections and the admin
    API's connection routes (workers/sb_conn_admin.c, migration 011), with
    two sb-worker --role token processes (A, B) and one in-process token
    worker (test ops that seal and open through the role) against fake
    brokers and the real test PostgreSQL (the fixture of 38_token_support.h):

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
#include <jansson.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_token_support.h"
#include "38_workers_fake.h"
#include "sb_attr.h"
#include "sb_conn.h"
#include "sb_crypto.h"

#define MAX_KEYS        64          /* API keys this run stores (searched for in the logs) */
#define MAX_RESEALS     50          /* reseal calls until nothing is left, at most */

static tk_proc_t s_b;                /* worker process B (A is tk_a) */
static char *s_keys [MAX_KEYS];     /* every API key stored */
static int s_key_count;

//  ---------------------------------------------------------------------
//  Rows

//  A new API key of this run, remembered for the log check.
static const char *
s_new_key (const char *what)
{
    assert_true (s_key_count < MAX_KEYS);
    char key [128];
    snprintf (key, sizeof key, "ck-apikey-%s-%s-%d", tk_prefix, what, s_key_count);
    s_keys [s_key_count] = strdup (key);
    return s_keys [s_key_count++];
}

//  ---------------------------------------------------------------------
//  Jobs

//  Stores `key` as `tenant`'s API key for `connector` through A: `want`
//  201 or 200. Returns the connection (new).
static json_t *
s_put (const char *tenant, const char *connector, const char *key, int want)
{
    char body [256];
    snprintf (body, sizeof body, "{\"api_key\":\"%s\"}", key);
    char *text = NULL;
    json_t *json = tk_admin (&tk_a, want, "PUT", tk_path ("/admin/tenants/%s/connections/%s", tenant,
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
    json_t *result = tk_op (&tk_in, "test/seal", text, &status);
    free (text);
    assert_int_equal (status, SB_STATUS_OK);
    snprintf (key_id, 64, "%s", tk_str (result, "key_id"));
    *sealed = strdup (tk_str (result, "sealed"));
    json_decref (result);
}

//  Opens `tenant`'s stored `connector` row (access) in-process.
static char *
s_open_row (const char *tenant, const char *connector)
{
    PGresult *res = tk_sql ("SELECT key_id, access_token_enc FROM connections"
                           " WHERE tenant_id = $1 AND connector = $2", 2, tenant, connector, NULL);
    assert_int_equal (PQntuples (res), 1);
    sb_status_t status;
    char *plain = tk_open (PQgetvalue (res, 0, 0), tenant, connector, "access",
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
    PQclear (tk_sql ("UPDATE connection_keys SET current = false WHERE current", 0, NULL, NULL, NULL));
    char *a_data = tk_admin_encode ("GET", "/admin/connection-keys", NULL, NULL);
    char a_id [32], b_id [32];
    tk_send (&tk_a, "admin/http", a_data, a_id);
    tk_send (&s_b, "admin/http", a_data, b_id);
    free (a_data);
    sb_status_t status;
    int http_a = 0, http_b = 0;
    char *a = tk_wait (&tk_a, a_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    char *b = tk_wait (&s_b, b_id, &status);
    assert_int_equal (status, SB_STATUS_OK);
    json_t *ja = tk_admin_answer ("a", a, &http_a, NULL);
    json_t *jb = tk_admin_answer ("b", b, &http_b, NULL);
    free (a);
    free (b);
    assert_int_equal (http_a, 200);
    assert_int_equal (http_b, 200);
    assert_string_equal (tk_str (ja, "current"), tk_str (jb, "current"));
    assert_int_equal (strlen (tk_str (ja, "current")), SB_CONN_KEY_ID_LEN);
    assert_int_equal (tk_number ("SELECT count(*) FROM connection_keys WHERE current", 0, NULL, NULL,
                                NULL), 1);
    char *current = tk_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    assert_string_equal (current, tk_str (ja, "current"));
    //  The list shows it current, with no key material.
    json_t *first = json_array_get (json_object_get (ja, "keys"), 0);
    assert_string_equal (tk_str (first, "id"), current);
    assert_true (json_is_true (json_object_get (first, "current")));
    assert_null (json_object_get (first, "sealed_key"));
    free (current);
    json_decref (ja);
    json_decref (jb);
}

static void
test_seal_open (void **state)
{
    const char *t1 = tk_tenant ("seal1"), *t2 = tk_tenant ("seal2");
    char key_id [64], *sealed = NULL;
    s_seal (t1, "ck-key", "access", "tok-secret-value", key_id, &sealed);
    sb_status_t status;
    char *plain = tk_open (key_id, t1, "ck-key", "access", sealed, &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (plain, "tok-secret-value");
    free (plain);
    //  The associated data binds tenant, connector and column.
    assert_null (tk_open (key_id, t1, "ck-key", "refresh", sealed, &status));
    assert_null (tk_open (key_id, t2, "ck-key", "access", sealed, &status));
    assert_null (tk_open (key_id, t1, "ck-header", "access", sealed, &status));
    //  Any byte changed (here the last hex digit, in the tag).
    char *altered = strdup (sealed);
    size_t len = strlen (altered);
    altered [len - 1] = altered [len - 1] == '0'? '1': '0';
    assert_null (tk_open (key_id, t1, "ck-key", "access", altered, &status));
    free (altered);
    //  A key the table does not hold: the job fails with a sentence.
    json_t *result = NULL;
    free (tk_open ("AAAAAAAAAAAAAAAA", t1, "ck-key", "access", sealed, &status));
    assert_int_not_equal (status, SB_STATUS_OK);
    free (sealed);
    //  The limit: SB_MAX_CONN_SECRET seals (and opens), one more does not.
    for (int extra = 0; extra <= 1; extra++) {
        json_t *data = json_pack ("{s:s, s:s, s:s, s:i}", "tenant", t1, "connector", "ck-key",
                                  "column", "access", "repeat", SB_MAX_CONN_SECRET + extra);
        char *text = json_dumps (data, JSON_COMPACT);
        json_decref (data);
        result = tk_op (&tk_in, "test/seal", text, &status);
        free (text);
        assert_int_equal (status, SB_STATUS_OK);
        if (extra)
            assert_true (json_is_null (json_object_get (result, "sealed")));
        else {
            plain = tk_open (tk_str (result, "key_id"), t1, "ck-key", "access",
                            tk_str (result, "sealed"), &status);
            assert_non_null (plain);
            assert_int_equal (strlen (plain), SB_MAX_CONN_SECRET);
            free (plain);
        }
        json_decref (result);
    }
    //  Without a job: the current key.
    result = tk_op (&tk_in, "test/plain", "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    char *current = tk_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    assert_string_equal (tk_str (result, "key_id"), current);
    free (current);
    json_decref (result);
    result = tk_op (&tk_in, "test/plain", "{\"need_id\":\"BBBBBBBBBBBBBBBB\"}", &status);
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
    const char *t1 = tk_tenant ("adm1");
    char t2 [64];
    snprintf (t2, sizeof t2, "%s", tk_tenant ("adm2"));
    tk_create_tenant (t1);
    tk_create_tenant (t2);
    char *current = tk_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    const char *k1 = s_new_key ("one"), *k2 = s_new_key ("two"), *k3 = s_new_key ("three");
    json_t *c = s_put (t1, "ck-key", k1, 201);
    assert_string_equal (tk_str (c, "kind"), "api_key");
    assert_string_equal (tk_str (c, "status"), "connected");
    assert_string_equal (tk_str (c, "connected_by"), "admin");
    assert_string_equal (tk_str (c, "key_id"), current);
    assert_int_equal (json_integer_value (json_object_get (c, "version")), 1);
    json_decref (c);
    c = s_put (t1, "ck-key", k2, 200);
    assert_int_equal (json_integer_value (json_object_get (c, "version")), 2);
    json_decref (c);
    json_decref (s_put (t1, "ck-header", k3, 201));
    free (current);

    //  The list: exactly these members, never a secret.
    char *text = NULL;
    json_t *list = tk_admin (&s_b, 200, "GET", tk_path ("/admin/tenants/%s/connections", t1), NULL,
                            NULL, &text);
    assert_null (strstr (text, k1));
    assert_null (strstr (text, k2));
    assert_null (strstr (text, k3));
    assert_null (strstr (text, "\\\\x"));
    free (text);
    json_t *connections = json_object_get (list, "connections");
    assert_int_equal (json_array_size (connections), 2);
    assert_string_equal (tk_str (json_array_get (connections, 0), "connector"), "ck-header");
    assert_string_equal (tk_str (json_array_get (connections, 1), "connector"), "ck-key");
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
    PQclear (tk_sql ("UPDATE connections SET access_token_enc = (SELECT access_token_enc"
                    "  FROM connections WHERE tenant_id = $1 AND connector = 'ck-key'),"
                    " key_id = (SELECT key_id FROM connections WHERE tenant_id = $1"
                    "  AND connector = 'ck-key')"
                    " WHERE tenant_id = $2 AND connector = 'ck-key'", 2, t1, t2, NULL));
    assert_null (s_open_row (t2, "ck-key"));
    //  (A row that opens under no key would stay under its key through
    //  every reseal: the operator deletes it.)
    json_decref (tk_admin (&tk_a, 200, "DELETE", tk_path ("/admin/tenants/%s/connections/ck-key", t2),
                          NULL, NULL, NULL));

    //  Refusals.
    char big [SB_MAX_CONN_SECRET + 64];
    memcpy (big, "{\"api_key\":\"", 12);
    memset (big + 12, 'k', SB_MAX_CONN_SECRET + 1);
    snprintf (big + 12 + SB_MAX_CONN_SECRET + 1, 8, "\"}");
    const char *put = tk_path ("/admin/tenants/%s/connections/ck-key", t1);
    char put_path [256];
    snprintf (put_path, sizeof put_path, "%s", put);
    tk_refused (400, "invalid_request", "16384", "PUT", put_path, NULL, big);
    tk_refused (400, "invalid_request", "required", "PUT", put_path, NULL, "{}");
    tk_refused (400, "invalid_request", "required", "PUT", put_path, NULL, "{\"api_key\":5}");
    tk_refused (400, "invalid_request", "empty", "PUT", put_path, NULL, "{\"api_key\":\"\"}");
    tk_refused (400, "invalid_request", "line break", "PUT", put_path, NULL,
               "{\"api_key\":\"abc\\ndef\"}");
    tk_refused (400, "invalid_request", "unknown member", "PUT", put_path, NULL,
               "{\"api_key\":\"abc\",\"more\":1}");
    tk_refused (400, "invalid_json", NULL, "PUT", put_path, NULL, "{\"api_key\":");
    tk_refused (400, "invalid_json", NULL, "PUT", put_path, NULL,
               "{\"api_key\":\"a\",\"api_key\":\"b\"}");
    tk_refused (404, "not_found", "no tenant", "PUT",
               tk_path ("/admin/tenants/%s-none/connections/ck-key", tk_prefix), NULL,
               "{\"api_key\":\"abc\"}");
    tk_refused (400, "invalid_request", "tenant id", "PUT", "/admin/tenants/Bad!/connections/ck-key",
               NULL, "{\"api_key\":\"abc\"}");
    tk_refused (404, "not_found", "no connector \"ck-nope\"", "PUT",
               tk_path ("/admin/tenants/%s/connections/ck-nope", t1), NULL, "{\"api_key\":\"abc\"}");
    tk_refused (409, "conflict", "/connect/ck-oauth", "PUT",
               tk_path ("/admin/tenants/%s/connections/ck-oauth", t1), NULL, "{\"api_key\":\"abc\"}");
    tk_refused (409, "conflict", "shared", "PUT",
               tk_path ("/admin/tenants/%s/connections/ck-shared", t1), NULL, "{\"api_key\":\"abc\"}");
    tk_refused (405, "method_not_allowed", NULL, "POST",
               tk_path ("/admin/tenants/%s/connections", t1), NULL, "{}");
    tk_refused (400, "invalid_request", "no query parameter", "GET",
               tk_path ("/admin/tenants/%s/connections", t1), "x=1", NULL);
    tk_refused (400, "invalid_request", "?limit", "POST", "/admin/connection-keys/reseal",
               "limit=0", NULL);
    tk_refused (400, "invalid_request", "no body", "POST", "/admin/connection-keys/rotate", NULL,
               "{\"x\":1}");
    tk_refused (404, "not_found", "no tenant", "GET",
               tk_path ("/admin/tenants/%s-none/connections", tk_prefix), NULL, NULL);
    //  Nothing refused changed the row (version 2, the second key).
    assert_int_equal (tk_number ("SELECT version FROM connections WHERE tenant_id = $1"
                                " AND connector = 'ck-key'", 1, t1, NULL, NULL), 2);
    plain = s_open_row (t1, "ck-key");
    assert_string_equal (plain, k2);
    free (plain);
    //  The largest key is taken.
    memset (big + 12, 'k', SB_MAX_CONN_SECRET);
    snprintf (big + 12 + SB_MAX_CONN_SECRET, 8, "\"}");
    json_decref (tk_admin (&tk_a, 200, "PUT", put_path, NULL, big, NULL));
    json_decref (s_put (t1, "ck-key", k2, 200));

    //  Delete: once, then not found.
    json_t *deleted = tk_admin (&tk_a, 200, "DELETE", tk_path ("/admin/tenants/%s/connections/ck-header",
                                                            t1), NULL, NULL, NULL);
    assert_true (json_is_true (json_object_get (deleted, "deleted")));
    json_decref (deleted);
    tk_refused (404, "not_found", "no connection to \"ck-header\"", "DELETE",
               tk_path ("/admin/tenants/%s/connections/ck-header", t1), NULL, NULL);
    tk_refused (400, "invalid_request", "connector name", "DELETE",
               tk_path ("/admin/tenants/%s/connections/a%%20b", t1), NULL, NULL);

    //  The audit log: who did what, never a secret.
    assert_int_equal (tk_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND actor = 'admin'"
                                " AND action = 'connection_connected'", 1, t1, NULL, NULL), 5);
    assert_int_equal (tk_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1 AND actor = 'admin'"
                                " AND action = 'connection_deleted' AND detail->>'connector' = 'ck-header'",
                                1, t1, NULL, NULL), 1);
    assert_int_equal (tk_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1"
                                " AND (detail::text LIKE '%' || $2 || '%' OR detail::text LIKE '%' || $3 || '%')",
                                3, t1, k1, k2), 0);
}

//  One reseal call through `proc`: its answer (new).
static json_t *
s_reseal (tk_proc_t *proc, const char *query)
{
    json_t *answer = tk_admin (proc, 200, "POST", "/admin/connection-keys/reseal", query, NULL, NULL);
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
        snprintf (tenants [i], sizeof tenants [i], "%s", tk_tenant (name));
        tk_create_tenant (tenants [i]);
        keys [i] = s_new_key (name);
        json_decref (s_put (tenants [i], "ck-key", keys [i], 201));
    }
    char *old = tk_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    json_t *rotated = tk_admin (&tk_a, 200, "POST", "/admin/connection-keys/rotate", NULL, NULL, NULL);
    assert_string_equal (tk_str (rotated, "previous"), old);
    char *new_id = strdup (tk_str (rotated, "current"));
    json_decref (rotated);
    assert_string_not_equal (new_id, old);
    char *current = tk_value ("SELECT connection_key_current ()", 0, NULL, NULL, NULL);
    assert_string_equal (current, new_id);
    free (current);

    //  Midway: the rows under the old key still open.
    for (int i = 0; i < ROWS; i++) {
        char *plain = s_open_row (tenants [i], "ck-key");
        assert_string_equal (plain, keys [i]);
        free (plain);
    }
    //  A new key sealed by the rotating worker goes under the new key.
    const char *fresh = tk_tenant ("rotnew");
    tk_create_tenant (fresh);
    json_t *c = s_put (fresh, "ck-key", s_new_key ("fresh"), 201);
    assert_string_equal (tk_str (c, "key_id"), new_id);
    json_decref (c);

    //  One small batch: two rows move, the others wait, the old key stays.
    json_t *answer = s_reseal (&s_b, "limit=2");
    assert_string_equal (tk_str (answer, "current"), new_id);
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
    char *version = tk_value ("SELECT version FROM connections WHERE tenant_id = $1"
                             " AND connector = 'ck-key'", 1, last, NULL, NULL);
    char *id = tk_value ("SELECT id FROM connections WHERE tenant_id = $1 AND connector = 'ck-key'",
                        1, last, NULL, NULL);
    char *row_key = tk_value ("SELECT key_id FROM connections WHERE id = $1", 1, id, NULL, NULL);
    char key_id [64], *sealed = NULL;
    const char *refreshed = s_new_key ("refreshed");
    //  (under the key the in-process worker holds as current: it may have
    //  read the old one less than SB_OAUTH_KEY_CHECK_MS ago, as any worker
    //  may; such a row is re-sealed below like the others)
    s_seal (last, "ck-key", "access", refreshed, key_id, &sealed);
    PQclear (tk_sql ("SELECT * FROM connection_store ($1, 'ck-key', 'api_key', $2::bytea, NULL, $3,"
                    " NULL, NULL, NULL, 'user:test')", 3, last, sealed, key_id));
    free (sealed);
    {
        const char *params [] = { id, version, row_key, new_id };
        PGresult *res = PQexecParams (tk_pg, "SELECT connection_reseal ($1::bigint, $2::bigint, $3, $4,"
                                      " '\\xdead'::bytea, NULL)", 4, NULL, params, NULL, NULL, 0);
        assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
        assert_string_equal (PQgetvalue (res, 0, 0), "f");
        PQclear (res);
    }
    char *plain = s_open_row (last, "ck-key");
    assert_string_equal (plain, refreshed);
    free (plain);
    assert_int_equal (tk_number ("SELECT version FROM connections WHERE id = $1", 1, id, NULL, NULL),
                      strtoll (version, NULL, 10) + 1);
    free (version);
    free (row_key);

    //  Reseal until nothing is left (as sb-admin connection-keys rotate does).
    bool retired = false;
    long long remaining = -1;
    for (int call = 0; call < MAX_RESEALS && remaining != 0; call++) {
        answer = s_reseal (call % 2? &tk_a: &s_b, NULL);
        remaining = json_integer_value (json_object_get (answer, "remaining"));
        retired = retired || s_listed (json_object_get (answer, "retired"), old);
        assert_int_equal (json_integer_value (json_object_get (answer, "failed")), 0);
        json_decref (answer);
    }
    assert_int_equal (remaining, 0);
    assert_true (retired);
    assert_int_equal (tk_number ("SELECT count(*) FROM connection_keys WHERE id = $1"
                                " AND retired_at IS NOT NULL AND NOT current", 1, old, NULL, NULL), 1);
    //  Every row is under the new key, opens to its own key, kept its version.
    for (int i = 0; i < ROWS; i++) {
        char *row_key_id = tk_value ("SELECT key_id FROM connections WHERE tenant_id = $1"
                                    " AND connector = 'ck-key'", 1, tenants [i], NULL, NULL);
        assert_string_equal (row_key_id, new_id);
        free (row_key_id);
        plain = s_open_row (tenants [i], "ck-key");
        assert_string_equal (plain, i == ROWS - 1? refreshed: keys [i]);
        free (plain);
        assert_int_equal (tk_number ("SELECT version FROM connections WHERE tenant_id = $1"
                                    " AND connector = 'ck-key'", 1, tenants [i], NULL, NULL),
                          i == ROWS - 1? 2: 1);
    }
    //  Each moved row is in its tenant's audit log.
    assert_int_equal (tk_number ("SELECT count(*) FROM audit_log WHERE tenant_id = $1"
                                " AND action = 'connection_key_rotated' AND detail->>'from' = $2"
                                " AND detail->>'to' = $3", 3, tenants [0], old, new_id), 1);
    //  The key list shows the old key retired, no row under it.
    json_t *list = tk_admin (&s_b, 200, "GET", "/admin/connection-keys", NULL, NULL, NULL);
    assert_string_equal (tk_str (list, "current"), new_id);
    json_t *keys_list = json_object_get (list, "keys");
    bool seen = false;
    for (size_t i = 0; i < json_array_size (keys_list); i++) {
        json_t *key = json_array_get (keys_list, i);
        if (strcmp (tk_str (key, "id"), old) != 0)
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
    FILE *secret_file = fopen (TK_SECRET_FILE, "r");
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
    s_log_clean (tk_a.log);
    s_log_clean (s_b.log);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

static void
s_connectors (void)
{
    tk_write ("ck-key.json", "{\"name\":\"ck-key\",\"title\":\"K\",\"base_url\":\"http://127.0.0.1:9\","
                             "\"auth\":{\"type\":\"bearer\",\"credential\":\"tenant\"}," TK_TOOL ("ck_key_t"));
    tk_write ("ck-header.json", "{\"name\":\"ck-header\",\"title\":\"H\",\"base_url\":\"http://127.0.0.1:9\","
                                "\"auth\":{\"type\":\"api_key_header\",\"header\":\"X-API-Key\"},"
                                TK_TOOL ("ck_header_t"));
    tk_write ("ck-oauth.json", "{\"name\":\"ck-oauth\",\"title\":\"O\",\"base_url\":\"http://127.0.0.1:9\","
                               "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"/oauth/authorize\","
                               "\"token_url\":\"/oauth/token\",\"client_id_env\":\"CK_TEST_CLIENT_ID\"}},"
                               TK_TOOL ("ck_oauth_t"));
    tk_write ("ck-shared.json", "{\"name\":\"ck-shared\",\"title\":\"S\",\"base_url\":\"http://127.0.0.1:9\","
                                "\"auth\":{\"type\":\"bearer\",\"credential\":\"shared\","
                                "\"token_env\":\"CK_TEST_SHARED_TOKEN\"}," TK_TOOL ("ck_shared_t"));
}

static int
s_setup (void **state)
{
    if (tk_start ("ck"))
        return -1;
    setenv ("CK_TEST_CLIENT_ID", "ck-client", 1);
    setenv ("CK_TEST_SHARED_TOKEN", "ck-shared-token", 1);
    s_connectors ();
    if (tk_proc_start (&tk_a, "a") || tk_proc_start (&s_b, "b") || tk_in_start ())
        return -1;
    return 0;
}

static int
s_teardown (void **state)
{
    bool clean = tk_proc_stop (&tk_a, 0);
    clean = tk_proc_stop (&s_b, 1) && clean;
    const char *names [] = { "ck-key.json", "ck-header.json", "ck-oauth.json", "ck-shared.json" };
    int rc = tk_stop (names, sizeof names / sizeof names [0]);
    for (int i = 0; i < s_key_count; i++)
        free (s_keys [i]);
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
