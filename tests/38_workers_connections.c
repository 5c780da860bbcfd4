/*  tests/38_workers_connections.c — op connection/credential of the token
    role (workers/sb_connections.c, migration 012): real sb-worker token
    processes against fake brokers, the real test PostgreSQL and the fake
    token endpoint of 38_fake_provider.c, which counts the grants it gives
    and accepts only the refresh token it issued last.

      - a fresh token is answered without asking the provider;
      - an expired one is refreshed once: the rotated refresh token and
        the kept var (instance_url) are stored, version 2 is answered;
      - 50 jobs at once on one expiring connection in one worker: one
        refresh (single flight); 40 jobs over two workers: one refresh
        (the lease); 20 jobs with the same stale version: one refresh, and
        the stale version asked again later is answered without one;
      - invalid_grant: broken, connection_broken audited, later jobs get
        `broken` without a provider call;
      - 503: the old token with time left is still served, a job refused
        with it gets `failed` with retry_after, an expired token gets
        `failed`; after the backoff the next job refreshes;
      - a provider that does not rotate: the old refresh token is kept,
        re-sealed under the worker's current data key;
      - the sweep of a third worker refreshes a row expiring within its
        window without any job;
      - refusals: an unknown or shared connector, bad data; no row:
        `missing`; an API key: answered with no expiry.

    The test seals the rows it writes itself (the format of
    workers/sb_conn.h: AES-256-GCM under a data key of connection_keys,
    sealed under the master secret's "connection-keys" subkey). A run has
    a database of its own in the fixture's cluster (its data keys and the
    rows its sweep sees are its alone), dropped at the end. */
#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
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

#include "38_fake_provider.h"
#include "38_workers_fake.h"
#include "sb_attr.h"
#include "sb_crypto.h"
#include "sb_harness.h"

#define HEARTBEAT_MS    2000        /* long: the test blocks on SQL while workers wait */
#define WAIT_MS         20000       /* a RESULT, at most */
#define ISSUER          "http://127.0.0.1:9"
#define OAUTH           "refresh-oauth"     /* the test's OAuth connector */
#define APIKEY          "refresh-key"       /* its API-key connector */
#define SHARED          "refresh-shared"    /* a connector with one shared secret */
#define MAX_JOBS        64          /* jobs one test sends at once, at most */

typedef struct {
    fake_broker_t *broker;
    pid_t pid;
    sb_msg_t held;              /* a message that came while the test waited on another */
    bool holding;
} s_worker_t;

static s_worker_t s_a, s_b, s_c;        /* two token workers; c sweeps (test_sweep) */
static s_worker_t *s_workers [3];
static fake_provider_t *s_fake;
static char *s_conninfo;                /* the run's own database (s_make_database) */
static char s_admin [512];              /* the fixture cluster's superuser connection */
static char s_dbname [64];
static PGconn *s_db;
static char s_prefix [32];
static char s_secret [80];
static char s_secret_path [256];
static char s_dir [256];
static char s_key_id [32];              /* the test's data key */
static uint8_t s_key [SB_AEAD_KEY_LEN];
static int s_seq;

//  ---------------------------------------------------------------------
//  Workers

static void
s_keep_alive (s_worker_t *busy)
{
    for (size_t i = 0; i < 3; i++) {
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
        if (fake_broker_recv (w->broker, msg, left > 50? 50: (int) left) == 0)
            return 0;
    }
}

static void
s_start (s_worker_t *w, int sweep_ms, int window_s)
{
    for (size_t i = 0; i < 3; i++)
        if (!s_workers [i]) {
            s_workers [i] = w;
            break;
        }
    w->broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (w->broker);
    char heartbeat [16], db [1024], migrations [512], secret [300], connectors [300];
    char sweep [32], window [32];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (db, sizeof db, "--db=%s", s_conninfo);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    snprintf (secret, sizeof secret, "--secret-key-file=%s", s_secret_path);
    snprintf (connectors, sizeof connectors, "--connectors=%s", s_dir);
    snprintf (sweep, sizeof sweep, "--refresh-sweep-ms=%d", sweep_ms);
    snprintf (window, sizeof window, "--refresh-window-s=%d", window_s);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "token", "--broker", w->broker->endpoint,
        "--credit", "128", "--heartbeat-ms", heartbeat, db, migrations, secret, connectors,
        sweep, window, "--issuer", ISSUER, NULL
    };
    w->pid = sb_harness_spawn (argv, NULL);
    assert_true (w->pid > 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (s_recv (w, &msg, 30000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    sb_msg_reset (&msg);
}

static bool
s_stop (s_worker_t *w)
{
    for (size_t i = 0; i < 3; i++)
        if (s_workers [i] == w)
            s_workers [i] = NULL;
    if (w->holding)
        sb_msg_reset (&w->held);
    w->holding = false;
    bool clean = true;
    if (w->pid > 0) {
        int wstatus = sb_harness_stop (w->pid);
        clean = WIFEXITED (wstatus) && WEXITSTATUS (wstatus) == 0;
        w->pid = -1;
    }
    fake_broker_destroy (&w->broker);
    return clean;
}

//  Sends connection/credential for `tenant`'s `connector` with `data`
//  (NULL: none) to `w`; corr_id out.
static void
s_send (s_worker_t *w, const char *tenant, const char *connector, const char *data,
        char corr_id [32])
{
    snprintf (corr_id, 32, "c%d", ++s_seq);
    sb_job_t job = {
        .op = sb_unconst ("connection/credential"), .connector = sb_unconst (connector),
        .subject = sb_unconst ("user:42"), .data = sb_unconst (data)
    };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    msg.command = SB_CMD_JOB;
    snprintf (msg.corr_id, sizeof msg.corr_id, "%s", corr_id);
    snprintf (msg.tenant, sizeof msg.tenant, "%s", tenant);
    msg.timeout_ms = WAIT_MS;
    msg.attempt = 1;
    msg.flags = SB_FLAG_RETRY_SAFE;
    msg.payload = payload;
    assert_non_null (w->broker->worker);
    assert_int_equal (sb_msg_send (w->broker->router, &msg, w->broker->worker), 0);
    sb_msg_reset (&msg);
}

//  The next RESULT from `w`: its corr_id (out), status, and result as JSON.
static json_t *
s_result (s_worker_t *w, char corr_id [32], sb_status_t *status)
{
    sb_msg_t msg = { 0 };
    if (s_recv (w, &msg, WAIT_MS))
        fail_msg ("no RESULT in %d ms", WAIT_MS);
    if (msg.command != SB_CMD_RESULT || !msg.payload)
        fail_msg ("expected a RESULT, got %s", sb_cmd_name (msg.command));
    sb_job_result_t result = { 0 };
    assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload),
                                            &result), 0);
    *status = msg.status;
    snprintf (corr_id, 32, "%.31s", msg.corr_id);
    json_t *doc = json_loads (result.result, 0, NULL);
    if (!doc)
        fail_msg ("the result is not JSON: %s", result.result);
    sb_job_result_clear (&result);
    sb_msg_reset (&msg);
    return doc;
}

//  One job, its answer.
static json_t *
s_ask (s_worker_t *w, const char *tenant, const char *connector, const char *data,
       sb_status_t *status)
{
    char sent [32], got [32];
    s_send (w, tenant, connector, data, sent);
    json_t *doc = s_result (w, got, status);
    assert_string_equal (got, sent);
    return doc;
}

static const char *
s_str (const json_t *doc, const char *key)
{
    const char *value = json_string_value (json_object_get (doc, key));
    if (!value)
        fail_msg ("no string \"%s\" in %s", key, json_dumps (doc, JSON_COMPACT));
    return value;
}

static json_int_t
s_num (const json_t *doc, const char *key)
{
    json_t *value = json_object_get (doc, key);
    if (!json_is_integer (value))
        fail_msg ("no integer \"%s\" in %s", key, json_dumps (doc, JSON_COMPACT));
    return json_integer_value (value);
}

//  A `connected` answer with `secret` (NULL: any) and `version`.
static void
s_expect_connected (const json_t *doc, sb_status_t status, const char *secret, json_int_t version)
{
    if (status != SB_STATUS_OK || strcmp (s_str (doc, "status"), "connected") != 0)
        fail_msg ("expected connected, got %d %s", status, json_dumps (doc, JSON_COMPACT));
    if (secret)
        assert_string_equal (s_str (doc, "secret"), secret);
    assert_int_equal (s_num (doc, "version"), version);
}

//  ---------------------------------------------------------------------
//  Rows

static PGresult *
s_sql (const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams (s_db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus (res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        fail_msg ("%s: %s", sql, PQresultErrorMessage (res));
    return res;
}

static void
s_exec (const char *sql, int n, const char *const *params)
{
    PQclear (s_sql (sql, n, params));
}

//  A new tenant of this run: "<prefix>-<name>".
static void
s_tenant (const char *name, char *tenant, size_t size)
{
    snprintf (tenant, size, "%s-%s", s_prefix, name);
    const char *params [] = { tenant };
    s_exec ("INSERT INTO tenants (id, name) VALUES ($1, $1)", 1, params);
}

//  `plain` sealed under the test's key for tenant/connector/column, as
//  libpq's bytea text.
static char *
s_sealed (const char *tenant, const char *connector, const char *column, const char *plain)
{
    char ad [256];
    snprintf (ad, sizeof ad, "%s/%s/%s", tenant, connector, column);
    size_t len = strlen (plain), out_len = 0;
    uint8_t *box = malloc (len + SB_AEAD_OVERHEAD);
    assert_non_null (box);
    assert_int_equal (sb_aead_seal (s_key, ad, strlen (ad), plain, len, box,
                                    len + SB_AEAD_OVERHEAD, &out_len), 0);
    char *text = malloc (2 + out_len * 2 + 1);
    assert_non_null (text);
    memcpy (text, "\\x", 2);
    for (size_t at = 0; at < out_len; at++)
        snprintf (text + 2 + at * 2, 3, "%02x", box [at]);
    free (box);
    return text;
}

//  A connected OAuth connection for `tenant` whose access token ends in
//  `expires_s` seconds (negative: ended that long ago).
static void
s_oauth_row (const char *tenant, const char *access, const char *refresh, int expires_s)
{
    char *access_text = s_sealed (tenant, OAUTH, "access", access);
    char *refresh_text = s_sealed (tenant, OAUTH, "refresh", refresh);
    char expires [16];
    snprintf (expires, sizeof expires, "%d", expires_s);
    const char *params [] = { tenant, OAUTH, access_text, refresh_text, s_key_id, expires };
    s_exec ("INSERT INTO connections (tenant_id, connector, kind, status, access_token_enc,"
            " refresh_token_enc, key_id, expires_at, version, scopes)"
            " VALUES ($1, $2, 'oauth2', 'connected', $3::bytea, $4::bytea, $5,"
            "         now () + make_interval (secs => $6::int), 1, 'read')", 6, params);
    free (access_text);
    free (refresh_text);
}

//  A column of `tenant`'s OAUTH row as text.
static char *
s_column (const char *tenant, const char *column)
{
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT (%s)::text FROM connections WHERE tenant_id = $1"
              " AND connector = '" OAUTH "'", column);
    const char *params [] = { tenant };
    PGresult *res = s_sql (sql, 1, params);
    assert_int_equal (PQntuples (res), 1);
    char *value = strdup (PQgetisnull (res, 0, 0)? "": PQgetvalue (res, 0, 0));
    PQclear (res);
    return value;
}

static void
s_expect_column (const char *tenant, const char *column, const char *expected)
{
    char *value = s_column (tenant, column);
    if (strcmp (value, expected) != 0)
        fail_msg ("%s of %s: \"%s\", not \"%s\"", column, tenant, value, expected);
    free (value);
}

//  The data key `id`, opened under the master secret.
static void
s_data_key (const char *id, uint8_t key [SB_AEAD_KEY_LEN])
{
    uint8_t wrap [32];
    static const char label [] = "switchboard/connection-keys";
    sb_hmac_sha256 ((const uint8_t *) s_secret, strlen (s_secret), (const uint8_t *) label,
                    sizeof label - 1, wrap);
    const char *params [] = { id };
    PGresult *res = PQexecParams (s_db, "SELECT sealed_key FROM connection_keys WHERE id = $1",
                                  1, NULL, params, NULL, NULL, 1);     //  binary
    assert_int_equal (PQntuples (res), 1);
    size_t len = 0;
    assert_int_equal (sb_aead_open (wrap, id, strlen (id), (const uint8_t *) PQgetvalue (res, 0, 0),
                                    (size_t) PQgetlength (res, 0, 0), key, SB_AEAD_KEY_LEN, &len), 0);
    assert_int_equal (len, SB_AEAD_KEY_LEN);
    PQclear (res);
}

//  `tenant`'s OAUTH refresh token, opened; the key it is under (out).
static char *
s_stored_refresh (const char *tenant, char key_id [64])
{
    const char *params [] = { tenant };
    PGresult *res = PQexecParams (s_db, "SELECT key_id, refresh_token_enc FROM connections"
                                  " WHERE tenant_id = $1 AND connector = '" OAUTH "'",
                                  1, NULL, params, NULL, NULL, 1);
    assert_int_equal (PQntuples (res), 1);
    snprintf (key_id, 64, "%.*s", PQgetlength (res, 0, 0), PQgetvalue (res, 0, 0));
    uint8_t key [SB_AEAD_KEY_LEN];
    s_data_key (key_id, key);
    char ad [256];
    snprintf (ad, sizeof ad, "%s/" OAUTH "/refresh", tenant);
    size_t len = (size_t) PQgetlength (res, 0, 1), out_len = 0;
    char *plain = calloc (1, len + 1);
    assert_int_equal (sb_aead_open (key, ad, strlen (ad), (const uint8_t *) PQgetvalue (res, 0, 1),
                                    len, (uint8_t *) plain, len, &out_len), 0);
    plain [out_len] = 0;
    PQclear (res);
    return plain;
}

//  Sends `count` jobs alternating over `workers` (1 or 2) for `tenant`
//  with `data`, and checks every answer is `connected` with one secret
//  and `version`. Returns that secret (new).
static char *
s_burst (s_worker_t **workers, int nworkers, int count, const char *tenant, const char *data,
         json_int_t version)
{
    assert_true (count <= MAX_JOBS);
    char sent [MAX_JOBS][32];
    for (int at = 0; at < count; at++)
        s_send (workers [at % nworkers], tenant, OAUTH, data, sent [at]);
    char *secret = NULL;
    int answered = 0;
    for (int at = 0; at < count; at++) {
        char got [32];
        sb_status_t status;
        json_t *doc = s_result (workers [at % nworkers], got, &status);
        s_expect_connected (doc, status, secret, version);
        if (!secret)
            secret = strdup (s_str (doc, "secret"));
        for (int i = 0; i < count; i++)
            if (strcmp (sent [i], got) == 0) {
                sent [i][0] = 0;
                answered++;
            }
        json_decref (doc);
    }
    assert_int_equal (answered, count);
    return secret;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_fresh (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("fresh", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-fresh", "rt-fresh", 3600);
    int requests = fake_provider_requests (s_fake);
    sb_status_t status;
    json_t *doc = s_ask (&s_a, tenant, OAUTH, "{}", &status);
    s_expect_connected (doc, status, "at-fresh", 1);
    assert_string_equal (s_str (doc, "kind"), "oauth2");
    assert_true (s_num (doc, "expires_in") > 3590 && s_num (doc, "expires_in") <= 3600);
    assert_true (json_is_object (json_object_get (doc, "vars")));
    json_decref (doc);
    //  No data at all is the same
    doc = s_ask (&s_b, tenant, OAUTH, NULL, &status);
    s_expect_connected (doc, status, "at-fresh", 1);
    json_decref (doc);
    assert_int_equal (fake_provider_requests (s_fake), requests);
}

static void
test_expired (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("expired", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-old", "rt-expired", -10);
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, true, 3600, 0);
    fake_provider_accept (s_fake, "rt-expired");
    int grants = fake_provider_grants (s_fake);
    sb_status_t status;
    json_t *doc = s_ask (&s_a, tenant, OAUTH, "{}", &status);
    char access [64], refresh [64], instance [128];
    fake_provider_last_tokens (s_fake, access, refresh, sizeof access);
    s_expect_connected (doc, status, access, 2);
    assert_true (s_num (doc, "expires_in") > 3590);
    snprintf (instance, sizeof instance, "%s/instance", fake_provider_url (s_fake));
    assert_string_equal (s_str (json_object_get (doc, "vars"), "instance_url"), instance);
    json_decref (doc);
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
    assert_int_equal (fake_provider_mismatches (s_fake), 0);
    //  Stored: the rotated refresh token, version 2, the var, no lease
    char key_id [64];
    char *stored = s_stored_refresh (tenant, key_id);
    assert_string_equal (stored, refresh);
    free (stored);
    s_expect_column (tenant, "version", "2");
    s_expect_column (tenant, "vars->>'instance_url'", instance);
    s_expect_column (tenant, "lease_owner", "");
    s_expect_column (tenant, "refresh_failures", "0");
    s_expect_column (tenant, "refreshed_at IS NOT NULL", "true");
    //  The other worker answers the new credential without a refresh
    doc = s_ask (&s_b, tenant, OAUTH, "{}", &status);
    s_expect_connected (doc, status, access, 2);
    json_decref (doc);
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
}

static void
test_single_flight (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("flight", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-old", "rt-flight", 30);       //  fewer than 60 s left
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, true, 3600, 300);         //  slow: the jobs pile up
    fake_provider_accept (s_fake, "rt-flight");
    int grants = fake_provider_grants (s_fake);
    s_worker_t *one [] = { &s_a };
    char *secret = s_burst (one, 1, 50, tenant, "{}", 2);
    char access [64], refresh [64];
    fake_provider_last_tokens (s_fake, access, refresh, sizeof access);
    assert_string_equal (secret, access);
    free (secret);
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
    assert_int_equal (fake_provider_mismatches (s_fake), 0);
    s_expect_column (tenant, "version", "2");
}

static void
test_two_workers (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("lease", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-old", "rt-lease", -1);
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, true, 3600, 500);
    fake_provider_accept (s_fake, "rt-lease");
    int grants = fake_provider_grants (s_fake);
    s_worker_t *two [] = { &s_a, &s_b };
    char *secret = s_burst (two, 2, 40, tenant, "{}", 2);
    free (secret);
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
    assert_int_equal (fake_provider_mismatches (s_fake), 0);
    s_expect_column (tenant, "version", "2");
}

static void
test_stale (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("stale", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-refused", "rt-stale", 3600);
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, true, 3600, 200);
    fake_provider_accept (s_fake, "rt-stale");
    int grants = fake_provider_grants (s_fake);
    s_worker_t *two [] = { &s_a, &s_b };
    char *secret = s_burst (two, 2, 20, tenant, "{\"stale\": 1}", 2);
    assert_string_not_equal (secret, "at-refused");
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
    //  The same stale version later: the newer credential, no refresh
    sb_status_t status;
    json_t *doc = s_ask (&s_a, tenant, OAUTH, "{\"stale\": 1}", &status);
    s_expect_connected (doc, status, secret, 2);
    json_decref (doc);
    free (secret);
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
    //  Version 2 refused: one more refresh
    doc = s_ask (&s_b, tenant, OAUTH, "{\"stale\": 2}", &status);
    s_expect_connected (doc, status, NULL, 3);
    json_decref (doc);
    assert_int_equal (fake_provider_grants (s_fake), grants + 2);
    assert_int_equal (fake_provider_mismatches (s_fake), 0);
}

static void
test_invalid_grant (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("broken", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-old", "rt-revoked", -5);
    fake_provider_set (s_fake, FAKE_INVALID_GRANT, NULL);
    int requests = fake_provider_requests (s_fake);
    sb_status_t status;
    json_t *doc = s_ask (&s_a, tenant, OAUTH, "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_str (doc, "status"), "broken");
    assert_non_null (strstr (s_str (doc, "detail"), "invalid_grant"));
    char *text = json_dumps (doc, JSON_COMPACT);
    assert_null (strstr (text, "rt-revoked"));
    free (text);
    json_t *url = json_object_get (doc, "connect_url");
    //  Made by sb_connect.c when linked: for this connector's link only
    if (url)
        assert_non_null (strstr (json_string_value (url), ISSUER "/connect/" OAUTH "?ticket="));
    json_decref (doc);
    assert_int_equal (fake_provider_requests (s_fake), requests + 1);
    s_expect_column (tenant, "status", "broken");
    char *detail = s_column (tenant, "status_detail");
    assert_non_null (strstr (detail, "invalid_grant"));
    assert_null (strstr (detail, "rt-revoked"));
    free (detail);
    s_expect_column (tenant, "lease_owner", "");
    const char *params [] = { tenant };
    PGresult *res = s_sql ("SELECT detail->>'connector' FROM audit_log WHERE tenant_id = $1"
                           " AND action = 'connection_broken'", 1, params);
    assert_int_equal (PQntuples (res), 1);
    assert_string_equal (PQgetvalue (res, 0, 0), OAUTH);
    PQclear (res);
    //  Later: broken, without asking the provider
    doc = s_ask (&s_b, tenant, OAUTH, "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_str (doc, "status"), "broken");
    json_decref (doc);
    assert_int_equal (fake_provider_requests (s_fake), requests + 1);
}

static void
test_transient (void **state)
{
    (void) state;
    char tenant [64], expired [64];
    s_tenant ("transient", tenant, sizeof tenant);
    s_tenant ("transient-x", expired, sizeof expired);
    s_oauth_row (tenant, "at-still", "rt-transient", 30);   //  30 s left
    s_oauth_row (expired, "at-gone", "rt-gone", -30);
    fake_provider_set (s_fake, FAKE_UNAVAILABLE, NULL);
    int requests = fake_provider_requests (s_fake);
    //  Time left: the old token is still served
    sb_status_t status;
    json_t *doc = s_ask (&s_a, tenant, OAUTH, "{}", &status);
    s_expect_connected (doc, status, "at-still", 1);
    assert_true (s_num (doc, "expires_in") <= 30);
    json_decref (doc);
    assert_int_equal (fake_provider_requests (s_fake), requests + 1);
    s_expect_column (tenant, "refresh_failures", "1");
    s_expect_column (tenant, "retry_at > now ()", "true");
    s_expect_column (tenant, "status", "connected");
    //  While backing off: served again without asking; refused with it: failed
    doc = s_ask (&s_b, tenant, OAUTH, "{}", &status);
    s_expect_connected (doc, status, "at-still", 1);
    json_decref (doc);
    doc = s_ask (&s_b, tenant, OAUTH, "{\"stale\": 1}", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_true (s_num (doc, "retry_after") >= 1);
    assert_non_null (strstr (s_str (doc, "error"), "could not be refreshed"));
    json_decref (doc);
    assert_int_equal (fake_provider_requests (s_fake), requests + 1);
    //  Expired: failed with retry_after
    doc = s_ask (&s_a, expired, OAUTH, "{}", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_true (s_num (doc, "retry_after") >= 1);
    assert_non_null (strstr (s_str (doc, "error"), "503"));
    json_decref (doc);
    //  The provider is back: after the backoff the next job refreshes
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, true, 3600, 0);
    fake_provider_accept (s_fake, "rt-transient");
    int grants = fake_provider_grants (s_fake);
    int64_t deadline = sb_harness_now_ms () + WAIT_MS;
    json_int_t version = 1;
    while (version == 1 && sb_harness_now_ms () < deadline) {
        doc = s_ask (&s_a, tenant, OAUTH, "{}", &status);
        s_expect_connected (doc, status, NULL, s_num (doc, "version"));
        version = s_num (doc, "version");
        json_decref (doc);
        if (version == 1)
            sb_harness_pause_ms (200);      //  the backoff is time itself
    }
    assert_int_equal (version, 2);
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
    s_expect_column (tenant, "refresh_failures", "0");
    s_expect_column (tenant, "retry_at", "");
}

static void
test_not_rotated (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("keep", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-old", "rt-keep", -1);
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, false, 1800, 0);
    fake_provider_accept (s_fake, "rt-keep");
    sb_status_t status;
    json_t *doc = s_ask (&s_b, tenant, OAUTH, "{}", &status);
    s_expect_connected (doc, status, NULL, 2);
    assert_true (s_num (doc, "expires_in") <= 1800 && s_num (doc, "expires_in") > 1790);
    json_decref (doc);
    char key_id [64];
    char *stored = s_stored_refresh (tenant, key_id);
    assert_string_equal (stored, "rt-keep");
    free (stored);
    //  Re-sealed under the worker's current key (the test's is not current)
    assert_string_not_equal (key_id, s_key_id);
    fake_provider_tokens (s_fake, true, 3600, 0);
}

static void
test_sweep (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("sweep", tenant, sizeof tenant);
    s_oauth_row (tenant, "at-soon", "rt-sweep", 90);    //  a job would not refresh it yet
    fake_provider_set (s_fake, FAKE_TOKENS, NULL);
    fake_provider_tokens (s_fake, true, 3600, 0);
    fake_provider_accept (s_fake, "rt-sweep");
    int grants = fake_provider_grants (s_fake);
    sb_status_t status;
    json_t *doc = s_ask (&s_a, tenant, OAUTH, "{}", &status);
    s_expect_connected (doc, status, "at-soon", 1);
    json_decref (doc);
    assert_int_equal (fake_provider_grants (s_fake), grants);
    //  A worker that sweeps every 100 ms what ends within 120 s
    s_start (&s_c, 100, 120);
    int64_t deadline = sb_harness_now_ms () + WAIT_MS;
    char *version = s_column (tenant, "version");
    while (strcmp (version, "1") == 0 && sb_harness_now_ms () < deadline) {
        free (version);
        fake_provider_wait_requests (s_fake, fake_provider_requests (s_fake) + 1, 200);
        version = s_column (tenant, "version");
    }
    assert_string_equal (version, "2");
    free (version);
    assert_true (s_stop (&s_c));
    assert_int_equal (fake_provider_grants (s_fake), grants + 1);
    s_expect_column (tenant, "expires_at > now () + interval '3500 s'", "true");
    doc = s_ask (&s_b, tenant, OAUTH, "{}", &status);
    s_expect_connected (doc, status, NULL, 2);
    json_decref (doc);
}

static void
test_refusals (void **state)
{
    (void) state;
    char tenant [64];
    s_tenant ("refusals", tenant, sizeof tenant);
    sb_status_t status;
    //  Not loaded, shared, bad data: failed with a sentence
    json_t *doc = s_ask (&s_a, tenant, "refresh-nowhere", "{}", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_non_null (strstr (s_str (doc, "error"), "not loaded"));
    json_decref (doc);
    doc = s_ask (&s_a, tenant, SHARED, "{}", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_non_null (strstr (s_str (doc, "error"), "does not keep each tenant's credential"));
    json_decref (doc);
    doc = s_ask (&s_a, tenant, OAUTH, "{\"stale\": \"1\"}", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_non_null (strstr (s_str (doc, "error"), "stale"));
    json_decref (doc);
    doc = s_ask (&s_a, tenant, OAUTH, "[1]", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    json_decref (doc);
    //  No row: missing (an OAuth connector's link when sb_connect.c makes one)
    doc = s_ask (&s_a, tenant, OAUTH, "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_str (doc, "status"), "missing");
    assert_non_null (strstr (s_str (doc, "detail"), "not connected"));
    json_t *url = json_object_get (doc, "connect_url");
    if (url)
        assert_non_null (strstr (json_string_value (url), ISSUER "/connect/" OAUTH "?ticket="));
    json_decref (doc);
    //  An API key: missing without a link; then added, answered without expiry
    doc = s_ask (&s_a, tenant, APIKEY, "{}", &status);
    assert_string_equal (s_str (doc, "status"), "missing");
    assert_null (json_object_get (doc, "connect_url"));
    json_decref (doc);
    char *key = s_sealed (tenant, APIKEY, "access", "key-123");
    const char *params [] = { tenant, APIKEY, key, s_key_id };
    s_exec ("INSERT INTO connections (tenant_id, connector, kind, status, access_token_enc, key_id)"
            " VALUES ($1, $2, 'api_key', 'connected', $3::bytea, $4)", 4, params);
    free (key);
    doc = s_ask (&s_b, tenant, APIKEY, "{}", &status);
    s_expect_connected (doc, status, "key-123", 1);
    assert_string_equal (s_str (doc, "kind"), "api_key");
    assert_null (json_object_get (doc, "expires_in"));
    json_decref (doc);
    //  Another tenant's row is never read: missing
    char other [64];
    s_tenant ("refusals-other", other, sizeof other);
    doc = s_ask (&s_b, other, APIKEY, "{}", &status);
    assert_string_equal (s_str (doc, "status"), "missing");
    json_decref (doc);
}

//  ---------------------------------------------------------------------

static void
s_write (const char *name, const char *text)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static const char s_tool [] =
    "\"tools\":[{\"name\":\"%s\",\"description\":\"d\",\"inputSchema\":{\"type\":\"object\"},"
    "\"request\":{\"method\":\"GET\",\"path\":\"/q\"},\"result\":{\"mapping\":\"object\",\"noun\":\"n\"}}]";

//  A database of this run's own in the fixture's cluster, owned by its
//  user: the data keys the workers make under this run's master secret
//  and the rows the sweep sees are this test's alone (other tests of the
//  run use other secrets). The cluster's superuser (trust, loopback)
//  creates and drops it. Sets s_conninfo. 0 or -1.
static int
s_make_database (const char *fixture)
{
    PQconninfoOption *options = PQconninfoParse (fixture, NULL);
    if (!options)
        return -1;
    const char *host = "127.0.0.1", *port = "5432", *user = "switchboard";
    for (PQconninfoOption *at = options; at->keyword; at++)
        if (at->val && strcmp (at->keyword, "host") == 0)
            host = at->val;
        else
        if (at->val && strcmp (at->keyword, "port") == 0)
            port = at->val;
        else
        if (at->val && strcmp (at->keyword, "user") == 0)
            user = at->val;
    snprintf (s_dbname, sizeof s_dbname, "%s", s_prefix);
    snprintf (s_admin, sizeof s_admin, "host=%s port=%s dbname=postgres user=postgres", host, port);
    char conninfo [512], sql [256];
    snprintf (conninfo, sizeof conninfo, "host=%s port=%s dbname=%s user=%s", host, port,
              s_dbname, user);
    snprintf (sql, sizeof sql, "CREATE DATABASE \"%s\" OWNER \"%s\"", s_dbname, user);
    PQconninfoFree (options);
    PGconn *admin = PQconnectdb (s_admin);
    PGresult *res = PQstatus (admin) == CONNECTION_OK? PQexec (admin, sql): NULL;
    int rc = res && PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
    if (rc)
        fprintf (stderr, "%s: %s\n", sql, res? PQresultErrorMessage (res): PQerrorMessage (admin));
    PQclear (res);
    PQfinish (admin);
    s_conninfo = rc == 0? strdup (conninfo): NULL;
    return s_conninfo? 0: -1;
}

static void
s_drop_database (void)
{
    char sql [256];
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", s_dbname);
    PGconn *admin = PQconnectdb (s_admin);
    if (PQstatus (admin) == CONNECTION_OK)
        PQclear (PQexec (admin, sql));
    PQfinish (admin);
}

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_prefix, sizeof s_prefix, "r21t%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    char *fixture = sb_harness_pg_conninfo ();
    if (!fixture)
        return -1;
    int made = s_make_database (fixture);
    free (fixture);
    if (made)
        return -1;
    s_fake = fake_provider_new ();
    if (!s_fake)
        return -1;
    //  The connectors
    snprintf (s_dir, sizeof s_dir, "/tmp/sb-connections-%d", (int) getpid ());
    mkdir (s_dir, 0700);
    setenv ("SB_TEST_REFRESH_ID", "refresh-client", 1);
    setenv ("SB_TEST_REFRESH_SECRET", "refresh-secret", 1);
    setenv ("SB_TEST_REFRESH_SHARED", "shared-secret", 1);
    char text [2048], tool [512];
    snprintf (tool, sizeof tool, s_tool, "refresh_oauth_tool");
    snprintf (text, sizeof text,
              "{\"name\":\"" OAUTH "\",\"title\":\"Refresh OAuth\",\"base_url\":\"{instance_url}\","
              "\"auth\":{\"type\":\"oauth2\",\"oauth2\":{\"authorize_url\":\"%s/authorize\","
              "\"token_url\":\"%s/token\",\"client_id_env\":\"SB_TEST_REFRESH_ID\","
              "\"client_secret_env\":\"SB_TEST_REFRESH_SECRET\",\"keep\":[\"instance_url\"]}},%s}",
              fake_provider_url (s_fake), fake_provider_url (s_fake), tool);
    s_write ("oauth.json", text);
    snprintf (tool, sizeof tool, s_tool, "refresh_key_tool");
    snprintf (text, sizeof text, "{\"name\":\"" APIKEY "\",\"title\":\"Refresh key\","
              "\"base_url\":\"http://127.0.0.1:9\",\"auth\":{\"type\":\"api_key_header\","
              "\"header\":\"X-Key\"},%s}", tool);
    s_write ("key.json", text);
    snprintf (tool, sizeof tool, s_tool, "refresh_shared_tool");
    snprintf (text, sizeof text, "{\"name\":\"" SHARED "\",\"title\":\"Refresh shared\","
              "\"base_url\":\"http://127.0.0.1:9\",\"auth\":{\"type\":\"bearer\","
              "\"credential\":\"shared\",\"token_env\":\"SB_TEST_REFRESH_SHARED\"},%s}", tool);
    s_write ("shared.json", text);
    //  The master secret
    snprintf (s_secret, sizeof s_secret, "refresh-secret-%08x-0123456789abcdefghijklm",
              (unsigned) zclock_time ());
    snprintf (s_secret_path, sizeof s_secret_path, "/tmp/sb-connections-secret-%d", (int) getpid ());
    FILE *file = fopen (s_secret_path, "w");
    if (!file)
        return -1;
    fprintf (file, "%s\n", s_secret);
    fclose (file);
    s_start (&s_a, 0, 300);
    s_start (&s_b, 0, 300);
    s_db = PQconnectdb (s_conninfo);
    if (PQstatus (s_db) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (s_db, "SELECT set_config ('switchboard.system', 'on', false)"));
    //  The test's data key (not current: the workers make their own)
    uint8_t nonce [6], wrap [32], box [SB_AEAD_KEY_LEN + SB_AEAD_OVERHEAD];
    if (sb_crypto_random (nonce, sizeof nonce) || sb_crypto_random (s_key, sizeof s_key))
        return -1;
    snprintf (s_key_id, sizeof s_key_id, "test%02x%02x%02x%02x%02x%02x", nonce [0], nonce [1],
              nonce [2], nonce [3], nonce [4], nonce [5]);
    static const char label [] = "switchboard/connection-keys";
    sb_hmac_sha256 ((const uint8_t *) s_secret, strlen (s_secret), (const uint8_t *) label,
                    sizeof label - 1, wrap);
    size_t len = 0;
    if (sb_aead_seal (wrap, s_key_id, strlen (s_key_id), s_key, sizeof s_key, box, sizeof box, &len))
        return -1;
    const char *values [] = { s_key_id, (const char *) box };
    int lengths [] = { 0, (int) len };
    int formats [] = { 0, 1 };
    PGresult *res = PQexecParams (s_db, "INSERT INTO connection_keys (id, sealed_key) VALUES ($1, $2)",
                                  2, NULL, values, lengths, formats, 0);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
    if (rc)
        fprintf (stderr, "connection_keys: %s\n", PQresultErrorMessage (res));
    PQclear (res);
    return rc;
}

static int
s_teardown (void **state)
{
    (void) state;
    bool clean = s_stop (&s_a);
    clean = s_stop (&s_b) && clean;
    if (!clean)
        fprintf (stderr, "a token worker did not exit cleanly\n");
    int rc = s_db && PQstatus (s_db) == CONNECTION_OK? 0: -1;
    PQfinish (s_db);
    fake_provider_destroy (&s_fake);
    const char *files [] = { "oauth.json", "key.json", "shared.json" };
    for (size_t at = 0; at < 3; at++) {
        char path [512];
        snprintf (path, sizeof path, "%s/%s", s_dir, files [at]);
        unlink (path);
    }
    rmdir (s_dir);
    unlink (s_secret_path);
    s_drop_database ();
    free (s_conninfo);
    return clean? rc: -1;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_fresh),
        cmocka_unit_test (test_expired),
        cmocka_unit_test (test_single_flight),
        cmocka_unit_test (test_two_workers),
        cmocka_unit_test (test_stale),
        cmocka_unit_test (test_invalid_grant),
        cmocka_unit_test (test_transient),
        cmocka_unit_test (test_not_rotated),
        cmocka_unit_test (test_sweep),
        cmocka_unit_test (test_refusals),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
