/*  tests/38_workers_webhook_ingest.c — the webhook role's inbound half
    (workers/sb_webhook_role.c, sb_wh_ingest.c, migration 016): two
    sb-worker --role webhook processes (default group commit; and
    --webhook-batch-max 1) against fake brokers, the real test PostgreSQL
    behind a TCP proxy the test cuts, and endpoint rows whose secrets the
    token role's own code sealed (an in-process token role: sb_conn_seal):

      - sb_wh_keys opens what sb_conn_seal sealed, with the ring read
        from the real connection_keys;
      - keys and types with quotes, braces, backslashes, "NULL", UTF-8:
        each stored once, as sent;
      - a good GitHub-signed request: 200 with the scheme's reply after its
        commit, one row,
        then one PUBLISH resource_updated switchboard://events/{connector}
        for its tenant; the same request again: 200, still one row, no
        PUBLISH;
      - wrong signature 401 and no row; unknown, malformed and disabled
        endpoints 404;
      - deliveries: a subscription for the event's type gets one, one for
        another type and a disabled one none;
      - events/read: the tenant's events, newest first, text or base64;
      - the database cut: 503 with retry-after and nothing stored; back:
        the provider's resend stored once;
      - 300 requests at once: all 200, all stored once, in fewer
        statements than requests; with --webhook-batch-max 1, one
        statement per request;
      - no secret and no signature in either worker's log. */
#include <czmq.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
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
#include "sb_conn.h"
#include "sb_crypto.h"
#include "sb_harness.h"
#include "sb_http_payload.h"
#include "sb_token_role.h"
#include "sb_wh_keys.h"

#define HEARTBEAT_MS    20000       /* long: the test is the only peer */
#define WAIT_MS         20000       /* a RESULT, at most */
#define JOB_TIMEOUT_MS  15000       /* a webhook job's deadline */
#define SECRET_FILE     SB_SOURCE_DIR "/tests/fixtures/conn-master-secret"
#define CONNECTOR       "crm"
#define CONCURRENT      300         /* requests sent at once to the group-commit worker */
#define CONCURRENT_ONE  40          /* … and to the one that commits each alone */
#define MAX_PUBLISHED   64

typedef struct {
    fake_broker_t *broker;
    pid_t pid;
    char log [128];
} s_proc_t;

//  A PUBLISH the fake broker received, and how many RESULTs came before it.
typedef struct {
    char tenant [SB_MAX_TENANT_LEN + 1];
    char topic [SB_MAX_TOPIC_LEN + 1];
    char uri [256];
    int results_before;
} s_published_t;

static s_proc_t s_main, s_one;
static fake_proxy_t *s_proxy;
static char *s_conninfo;
static PGconn *s_pg;
static char s_prefix [32];
static char s_tenant [64];
static char s_ep_ok [64], s_ep_off [64], s_ep_none [64];
static char s_sub_push [64], s_sub_issues [64], s_sub_off [64];
static const char *s_secret = "gh-secret-for-the-ingest-test-0123456789";
static sb_worker_t *s_tw;           //  the in-process token role's worker (never run)
static sb_token_role_t *s_trole;    //  … and role: it seals as the admin API does
static int s_seq;
static int s_results;               //  RESULTs received, in all
static s_published_t s_published [MAX_PUBLISHED];
static int s_published_count;
static char s_signatures [8][80];   //  signatures sent (searched for in the logs)
static int s_signature_count;

//  ---------------------------------------------------------------------
//  SQL

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

static long long
s_number (const char *sql, int n, const char *p1, const char *p2, const char *p3)
{
    PGresult *res = s_sql (sql, n, p1, p2, p3);
    if (PQntuples (res) != 1)
        fail_msg ("%s: %d rows", sql, PQntuples (res));
    long long value = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    PQclear (res);
    return value;
}

static long long
s_events (const char *key)
{
    return s_number ("SELECT count(*) FROM webhook_events WHERE endpoint_id = $1 AND event_key = $2",
                     2, s_ep_ok, key, NULL);
}

//  ---------------------------------------------------------------------
//  Sealing as the token role does

typedef struct {
    bool done;
    char key_id [64];
} s_ready_t;

static void
s_on_key (const char *key_id, const char *error, void *arg)
{
    s_ready_t *ready = arg;
    if (!key_id)
        fail_msg ("no connection data key: %s", error);
    snprintf (ready->key_id, sizeof ready->key_id, "%s", key_id);
    ready->done = true;
}

//  `plain` sealed with sb_conn_seal for `owner`'s column "secret": the
//  current key's id and the box in hex (new).
static char *
s_seal (const char *owner, const char *column, const char *plain, char key_id [64])
{
    s_ready_t ready = { false };
    sb_conn_keys_ready_plain (s_trole, NULL, s_on_key, &ready);
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (!ready.done && zclock_mono () < deadline)
        assert_int_equal (sb_reactor_run_once (sb_worker_reactor (s_tw), 50), 0);
    assert_true (ready.done);
    snprintf (key_id, 64, "%s", ready.key_id);
    size_t len = 0;
    uint8_t *sealed = sb_conn_seal (s_trole, key_id, s_tenant, owner, column, plain,
                                    strlen (plain), &len);
    assert_non_null (sealed);
    char *hex = malloc (2 * len + 1);
    sb_hex_encode (sealed, len, hex);
    free (sealed);
    return hex;
}

static void
s_endpoint_insert (const char *id, bool enabled)
{
    char key_id [64], owner [96];
    snprintf (owner, sizeof owner, "webhook:%s", id);
    char *hex = s_seal (owner, "secret", s_secret, key_id);
    const char *params [] = { id, s_tenant, key_id, hex, enabled? "t": "f" };
    PGresult *res = PQexecParams (s_pg,
        "INSERT INTO webhook_endpoints (id, tenant_id, connector, scheme, key_id, secret_enc, "
        "enabled) VALUES ($1, $2, '" CONNECTOR "', 'github', $3, decode ($4, 'hex'), $5)",
        5, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        fail_msg ("endpoint: %s", PQresultErrorMessage (res));
    PQclear (res);
    free (hex);
}

static void
s_subscription_insert (const char *id, const char *types, const char *connector, bool enabled)
{
    char key_id [64], owner [96];
    snprintf (owner, sizeof owner, "subscription:%s", id);
    char *hex = s_seal (owner, "secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key_id);
    const char *params [] = { id, s_tenant, types, connector, key_id, hex, enabled? "t": "f" };
    PGresult *res = PQexecParams (s_pg,
        "INSERT INTO webhook_subscriptions (id, tenant_id, url, event_types, connector, key_id, "
        "secret_enc, enabled) VALUES ($1, $2, 'https://example.invalid/hook', $3::text[], $4, "
        "$5, decode ($6, 'hex'), $7)", 7, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        fail_msg ("subscription: %s", PQresultErrorMessage (res));
    PQclear (res);
    free (hex);
}

//  ---------------------------------------------------------------------
//  Jobs and what comes back

static uint32_t s_job_timeout_ms = JOB_TIMEOUT_MS;     //  the next jobs' deadline

static void
s_send_job (s_proc_t *proc, const char *corr_id, const char *tenant, const sb_job_t *job)
{
    zframe_t *payload = sb_job_encode (job);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    msg.command = SB_CMD_JOB;
    snprintf (msg.corr_id, sizeof msg.corr_id, "%s", corr_id);
    snprintf (msg.tenant, sizeof msg.tenant, "%s", tenant);
    msg.timeout_ms = s_job_timeout_ms;
    msg.flags = SB_FLAG_RETRY_SAFE;
    msg.attempt = 1;
    msg.payload = payload;
    assert_int_equal (sb_msg_send (proc->broker->router, &msg, proc->broker->worker), 0);
    sb_msg_reset (&msg);
}

//  A GitHub delivery: headers for `key`, `event` signed over `body` with
//  `secret` (NULL: a signature of another secret).
static void
s_send_webhook (s_proc_t *proc, const char *corr_id, const char *endpoint, const char *key,
                const char *event, const void *body, size_t len, const char *secret)
{
    uint8_t mac [SB_HMAC_SHA256_LEN];
    const char *with = secret? secret: "not-the-endpoint-secret";
    sb_hmac_sha256 ((const uint8_t *) with, strlen (with), body, len, mac);
    char signature [80] = "sha256=";
    sb_hex_encode (mac, sizeof mac, signature + 7);
    if (s_signature_count < 8)
        snprintf (s_signatures [s_signature_count++], sizeof s_signatures [0], "%s", signature + 7);
    json_t *data = json_pack ("{s:s, s:s, s:s, s:[[s,s], [s,s], [s,s], [s,s]], s:s}",
                              "endpoint", endpoint, "method", "POST", "query", "",
                              "headers", "content-type", "application/json",
                              "x-github-delivery", key, "x-github-event", event,
                              "x-hub-signature-256", signature, "remote", "203.0.113.7");
    char *text = json_dumps (data, JSON_COMPACT);
    json_decref (data);
    sb_job_t job = { .op = sb_unconst ("webhook/receive"), .data = text,
                     .body = (uint8_t *) sb_unconst (body), .body_len = len };
    s_send_job (proc, corr_id, "_webhook", &job);
    free (text);
}

//  The next RESULT (PUBLISHes before it are kept in s_published): its
//  corr_id into `corr_id`, status, result text (new). 0 or -1.
static int
s_next_result (s_proc_t *proc, char corr_id [SB_MAX_CORR_ID_LEN + 1], sb_status_t *status, char **text, int wait_ms)
{
    int64_t deadline = zclock_mono () + wait_ms;
    while (zclock_mono () < deadline) {
        sb_msg_t msg = { 0 };
        if (fake_broker_recv (proc->broker, &msg, (int) (deadline - zclock_mono ())))
            return -1;
        if (msg.command == SB_CMD_PUBLISH) {
            assert_true (s_published_count < MAX_PUBLISHED);
            s_published_t *p = &s_published [s_published_count++];
            snprintf (p->tenant, sizeof p->tenant, "%s", msg.tenant);
            snprintf (p->topic, sizeof p->topic, "%s", msg.topic);
            size_t size = msg.payload? zframe_size (msg.payload): 0;
            assert_true (size < sizeof p->uri);
            if (size)
                memcpy (p->uri, zframe_data (msg.payload), size);
            p->uri [size] = '\0';
            p->results_before = s_results;
            sb_msg_reset (&msg);
            continue;
        }
        if (msg.command != SB_CMD_RESULT)
            fail_msg ("expected RESULT, got %s", sb_cmd_name (msg.command));
        sb_job_result_t result = { 0 };
        assert_int_equal (sb_job_result_decode (zframe_data (msg.payload),
                                                zframe_size (msg.payload), &result), 0);
        snprintf (corr_id, SB_MAX_CORR_ID_LEN + 1, "%s", msg.corr_id);
        *status = msg.status;
        *text = result.result;
        result.result = NULL;
        sb_job_result_clear (&result);
        sb_msg_reset (&msg);
        s_results++;
        return 0;
    }
    return -1;
}

//  An HTTP answer: status, body (into `body`), retry-after (into `retry`).
static int
s_http (const char *text, char *body, size_t size, char *retry, size_t retry_size)
{
    sb_http_response_t response = { 0 };
    const char *why = NULL;
    if (sb_http_response_decode (text, strlen (text), &response, &why))
        fail_msg ("not an HTTP response (%s): %s", why, text);
    if (body)
        snprintf (body, size, "%s", response.body);
    const char *after = sb_http_response_header (&response, "retry-after");
    if (retry)
        snprintf (retry, retry_size, "%s", after? after: "");
    int status = response.status;
    sb_http_response_clear (&response);
    return status;
}

//  One webhook: its HTTP status, body into `body` (may be NULL).
static int
s_webhook (s_proc_t *proc, const char *endpoint, const char *key, const char *event,
           const void *body, size_t len, const char *secret, char *answer, size_t size)
{
    char corr_id [64], got [SB_MAX_CORR_ID_LEN + 1];
    snprintf (corr_id, sizeof corr_id, "w%d", ++s_seq);
    s_send_webhook (proc, corr_id, endpoint, key, event, body, len, secret);
    sb_status_t status;
    char *text = NULL;
    if (s_next_result (proc, got, &status, &text, WAIT_MS))
        fail_msg ("no RESULT for %s", corr_id);
    assert_string_equal (got, corr_id);
    if (status != SB_STATUS_OK)
        fail_msg ("webhook job ended %s: %s", sb_status_name (status), text);
    char retry [16];
    int http = s_http (text, answer, size, retry, sizeof retry);
    if (http == 503)
        assert_string_equal (retry, "5");
    free (text);
    return http;
}

//  An op's result parsed (new), the job ending ok.
static json_t *
s_op (s_proc_t *proc, const char *op, const char *tenant, const char *data)
{
    char corr_id [64], got [SB_MAX_CORR_ID_LEN + 1];
    snprintf (corr_id, sizeof corr_id, "o%d", ++s_seq);
    sb_job_t job = { .op = sb_unconst (op), .data = sb_unconst (data) };
    s_send_job (proc, corr_id, tenant, &job);
    sb_status_t status;
    char *text = NULL;
    if (s_next_result (proc, got, &status, &text, WAIT_MS))
        fail_msg ("no RESULT for %s", op);
    assert_string_equal (got, corr_id);
    if (status != SB_STATUS_OK)
        fail_msg ("%s ended %s: %s", op, sb_status_name (status), text);
    json_t *json = json_loads (text, 0, NULL);
    assert_non_null (json);
    free (text);
    return json;
}

static long long
s_stat (s_proc_t *proc, const char *name)
{
    json_t *pong = s_op (proc, "ping", "_webhook", NULL);
    json_t *stats = json_object_get (pong, "stats");
    json_t *value = json_object_get (stats, name);
    if (!value)
        value = json_object_get (json_object_get (stats, "refused"), name);
    assert_true (json_is_integer (value));
    long long number = json_integer_value (value);
    json_decref (pong);
    return number;
}

static void
s_key (char *key, size_t size, const char *what)
{
    snprintf (key, size, "%s-%s-%d", s_prefix, what, ++s_seq);
}

//  ---------------------------------------------------------------------
//  Tests

//  sb_wh_keys (the ring from connection_keys, the master secret from its
//  file) opens what sb_conn_seal sealed; nothing else.
static void
test_keys_open_sealed (void **state)
{
    char key_id [64];
    char *hex = s_seal ("webhook:we_keystest", "secret", "the-plain-secret", key_id);
    char *why = NULL;
    char *master = sb_secret_read_file (SECRET_FILE, &why);
    assert_non_null (master);
    sb_wh_keys_t *keys = sb_wh_keys_new ((const uint8_t *) master, strlen (master));
    sb_secret_free (&master);
    assert_non_null (keys);
    PGresult *res = s_sql (SB_WH_KEYS_SQL, 0, NULL, NULL, NULL);
    assert_true (sb_wh_keys_load (keys, res) >= 1);
    PQclear (res);
    assert_true (sb_wh_keys_has (keys, key_id));
    size_t sealed_len = strlen (hex) / 2, len = 0;
    uint8_t *sealed = malloc (sealed_len);
    assert_int_equal (sb_hex_decode (hex, sealed, sealed_len, &sealed_len), 0);
    char *plain = sb_wh_keys_open (keys, key_id, s_tenant, "webhook:we_keystest", "secret",
                                   sealed, sealed_len, &len);
    assert_non_null (plain);
    assert_string_equal (plain, "the-plain-secret");
    free (plain);
    assert_null (sb_wh_keys_open (keys, key_id, s_tenant, "webhook:we_keystest", "previous",
                                  sealed, sealed_len, &len));
    assert_null (sb_wh_keys_open (keys, key_id, s_tenant, "webhook:we_other00", "secret",
                                  sealed, sealed_len, &len));
    free (sealed);
    free (hex);
    sb_wh_keys_destroy (&keys);
}

static void
test_store_once (void **state)
{
    char key [64], body [256], answer [256];
    s_key (key, sizeof key, "once");
    snprintf (body, sizeof body, "{\"ref\":\"refs/heads/main\",\"key\":\"%s\"}", key);
    int before = s_published_count;
    int results = s_results;
    assert_int_equal (s_webhook (&s_main, s_ep_ok, key, "push", body, strlen (body), s_secret,
                                 answer, sizeof answer), 200);
    //  The scheme's reply (a JSON object for GitHub).
    json_t *reply = json_loads (answer, 0, NULL);
    assert_true (json_is_object (reply));
    json_decref (reply);
    //  Answered after the commit: the row is there.
    assert_int_equal (s_events (key), 1);
    //  Then the news for the tenant's event log, after the answer.
    long long stored = s_stat (&s_main, "stored");
    assert_true (stored >= 1);
    assert_int_equal (s_published_count, before + 1);
    s_published_t *p = &s_published [before];
    assert_string_equal (p->tenant, s_tenant);
    assert_string_equal (p->topic, "resource_updated");
    assert_string_equal (p->uri, "switchboard://events/" CONNECTOR);
    assert_int_equal (p->results_before, results + 1);
    PGresult *res = s_sql ("SELECT tenant_id, connector, type, convert_from (body, 'UTF8') "
                           "FROM webhook_events WHERE event_key = $1", 1, key, NULL, NULL);
    assert_string_equal (PQgetvalue (res, 0, 0), s_tenant);
    assert_string_equal (PQgetvalue (res, 0, 1), CONNECTOR);
    assert_string_equal (PQgetvalue (res, 0, 2), "push");
    assert_string_equal (PQgetvalue (res, 0, 3), body);
    PQclear (res);

    //  The provider sends it again: acknowledged, stored once, no news.
    long long duplicates = s_stat (&s_main, "duplicates");
    assert_int_equal (s_webhook (&s_main, s_ep_ok, key, "push", body, strlen (body), s_secret,
                                 NULL, 0), 200);
    assert_int_equal (s_events (key), 1);
    assert_int_equal (s_stat (&s_main, "duplicates"), duplicates + 1);
    assert_int_equal (s_stat (&s_main, "stored"), stored);
    assert_int_equal (s_published_count, before + 1);
}

//  Keys and types as the provider spells them, whatever the array
//  literals of the statement must quote: each stored once, as sent.
static void
test_odd_keys (void **state)
{
    char keys [3][96];
    snprintf (keys [0], sizeof keys [0], "%s \"quoted\", {braced} \\ back", s_prefix);
    snprintf (keys [1], sizeof keys [1], "NULL");
    snprintf (keys [2], sizeof keys [2], "%s-\xc3\xa9t\xc3\xa9 ", s_prefix);
    for (int i = 0; i < 3; i++) {
        const char *body = "{\"odd\":true}";
        for (int twice = 0; twice < 2; twice++)
            assert_int_equal (s_webhook (&s_main, s_ep_ok, keys [i], "a\"b,{c}", body,
                                         strlen (body), s_secret, NULL, 0), 200);
        assert_int_equal (s_events (keys [i]), 1);
        assert_int_equal (s_number ("SELECT count(*) FROM webhook_events WHERE event_key = $1"
                                    " AND type = 'a\"b,{c}'", 1, keys [i], NULL, NULL), 1);
    }
}

static void
test_refusals (void **state)
{
    char key [64], body [128], answer [128];
    s_key (key, sizeof key, "refused");
    snprintf (body, sizeof body, "{\"key\":\"%s\"}", key);
    long long unverified = s_stat (&s_main, "unverified");
    long long unknown = s_stat (&s_main, "unknown");
    //  Signed with another secret: 401, no detail, nothing stored.
    assert_int_equal (s_webhook (&s_main, s_ep_ok, key, "push", body, strlen (body), NULL,
                                 answer, sizeof answer), 401);
    assert_string_equal (answer, "{\"error\":\"unauthorized\"}");
    assert_int_equal (s_events (key), 0);
    //  The same signed with the endpoint's secret: stored.
    assert_int_equal (s_webhook (&s_main, s_ep_ok, key, "push", body, strlen (body), s_secret,
                                 answer, sizeof answer), 200);
    assert_int_equal (s_events (key), 1);
    //  Unknown, disabled, malformed endpoint IDs; unknown again (the
    //  negative entry answers).
    assert_int_equal (s_webhook (&s_main, s_ep_none, key, "push", body, strlen (body), s_secret,
                                 answer, sizeof answer), 404);
    assert_string_equal (answer, "{\"error\":\"not_found\"}");
    assert_int_equal (s_webhook (&s_main, s_ep_off, key, "push", body, strlen (body), s_secret,
                                 NULL, 0), 404);
    assert_int_equal (s_webhook (&s_main, "bad id!", key, "push", body, strlen (body), s_secret,
                                 NULL, 0), 404);
    assert_int_equal (s_webhook (&s_main, s_ep_none, key, "push", body, strlen (body), s_secret,
                                 NULL, 0), 404);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_events WHERE endpoint_id = $1",
                                1, s_ep_off, NULL, NULL), 0);
    assert_int_equal (s_stat (&s_main, "unverified"), unverified + 1);
    assert_int_equal (s_stat (&s_main, "unknown"), unknown + 4);
}

//  The wrong-signature request stored nothing, its key later stored once.
static void
test_wrong_signature_not_stored (void **state)
{
    char key [64], body [128];
    s_key (key, sizeof key, "forged");
    snprintf (body, sizeof body, "{\"forged\":\"%s\"}", key);
    assert_int_equal (s_webhook (&s_main, s_ep_ok, key, "push", body, strlen (body), NULL,
                                 NULL, 0), 401);
    assert_int_equal (s_events (key), 0);
    //  The same body signed with the secret, one byte changed after.
    uint8_t mac [SB_HMAC_SHA256_LEN];
    sb_hmac_sha256 ((const uint8_t *) s_secret, strlen (s_secret), (const uint8_t *) body,
                    strlen (body), mac);
    char corr_id [64], got [SB_MAX_CORR_ID_LEN + 1];
    snprintf (corr_id, sizeof corr_id, "f%d", ++s_seq);
    char signature [80] = "sha256=";
    sb_hex_encode (mac, sizeof mac, signature + 7);
    char tampered [128];
    snprintf (tampered, sizeof tampered, "%s", body);
    tampered [2] ^= 1;
    json_t *data = json_pack ("{s:s, s:[[s,s], [s,s], [s,s]]}", "endpoint", s_ep_ok, "headers",
                              "x-github-delivery", key, "x-github-event", "push",
                              "x-hub-signature-256", signature);
    char *text = json_dumps (data, JSON_COMPACT);
    json_decref (data);
    sb_job_t job = { .op = sb_unconst ("webhook/receive"), .data = text,
                     .body = (uint8_t *) tampered, .body_len = strlen (tampered) };
    s_send_job (&s_main, corr_id, "_webhook", &job);
    free (text);
    sb_status_t status;
    char *result = NULL;
    assert_int_equal (s_next_result (&s_main, got, &status, &result, WAIT_MS), 0);
    assert_string_equal (got, corr_id);
    assert_int_equal (s_http (result, NULL, 0, NULL, 0), 401);
    free (result);
    assert_int_equal (s_events (key), 0);
}

static long long
s_deliveries (const char *subscription, const char *key)
{
    return s_number ("SELECT count(*) FROM webhook_deliveries d JOIN webhook_events e"
                     " ON e.id = d.event_id WHERE d.subscription_id = $1 AND e.event_key = $2"
                     " AND d.state = 'pending'", 2, subscription, key, NULL);
}

static void
test_deliveries (void **state)
{
    char push [64], issue [64], body [128];
    s_key (push, sizeof push, "push");
    s_key (issue, sizeof issue, "issue");
    snprintf (body, sizeof body, "{\"ref\":\"x\"}");
    assert_int_equal (s_webhook (&s_main, s_ep_ok, push, "push", body, strlen (body), s_secret,
                                 NULL, 0), 200);
    snprintf (body, sizeof body, "{\"action\":\"opened\"}");
    assert_int_equal (s_webhook (&s_main, s_ep_ok, issue, "issues", body, strlen (body),
                                 s_secret, NULL, 0), 200);
    //  push: only the subscription to "push"; issues.opened: only "issues.*".
    assert_int_equal (s_deliveries (s_sub_push, push), 1);
    assert_int_equal (s_deliveries (s_sub_issues, push), 0);
    assert_int_equal (s_deliveries (s_sub_issues, issue), 1);
    assert_int_equal (s_deliveries (s_sub_push, issue), 0);
    assert_int_equal (s_deliveries (s_sub_off, push), 0);
    assert_int_equal (s_deliveries (s_sub_off, issue), 0);
    //  A resend makes no second delivery.
    assert_int_equal (s_webhook (&s_main, s_ep_ok, issue, "issues", body, strlen (body),
                                 s_secret, NULL, 0), 200);
    assert_int_equal (s_deliveries (s_sub_issues, issue), 1);
}

static void
test_events_read (void **state)
{
    char text_key [64], bin_key [64];
    s_key (text_key, sizeof text_key, "read-text");
    s_key (bin_key, sizeof bin_key, "read-bin");
    const char *body = "{\"read\":\"me\"}";
    assert_int_equal (s_webhook (&s_main, s_ep_ok, text_key, "push", body, strlen (body),
                                 s_secret, NULL, 0), 200);
    const uint8_t binary [] = { 0xff, 0x00, 0xfe, 'a' };
    assert_int_equal (s_webhook (&s_main, s_ep_ok, bin_key, "push", binary, sizeof binary,
                                 s_secret, NULL, 0), 200);
    json_t *result = s_op (&s_main, "events/read", s_tenant,
                           "{\"connector\":\"" CONNECTOR "\",\"limit\":2}");
    json_t *events = json_object_get (result, "events");
    assert_int_equal (json_array_size (events), 2);
    json_t *newest = json_array_get (events, 0), *older = json_array_get (events, 1);
    assert_string_equal (json_string_value (json_object_get (newest, "id")), bin_key);
    assert_string_equal (json_string_value (json_object_get (newest, "body_base64")), "/wD+YQ==");
    assert_null (json_object_get (newest, "body"));
    assert_string_equal (json_string_value (json_object_get (older, "id")), text_key);
    assert_string_equal (json_string_value (json_object_get (older, "body")), body);
    assert_string_equal (json_string_value (json_object_get (older, "type")), "push");
    assert_string_equal (json_string_value (json_object_get (older, "endpoint")), s_ep_ok);
    assert_non_null (json_string_value (json_object_get (older, "received_at")));
    json_decref (result);
    //  Another tenant sees none of them.
    result = s_op (&s_main, "events/read", "wi-nobody", "{\"connector\":\"" CONNECTOR "\"}");
    assert_int_equal (json_array_size (json_object_get (result, "events")), 0);
    json_decref (result);
}

static void
test_db_down (void **state)
{
    char key [64], body [128], app [64];
    s_key (key, sizeof key, "down");
    snprintf (body, sizeof body, "{\"down\":\"%s\"}", key);
    snprintf (app, sizeof app, "%s-main", s_prefix);
    fake_proxy_set_down (s_proxy, true);
    //  The worker's connection is gone once PostgreSQL no longer lists it.
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (s_number ("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", 1,
                     app, NULL, NULL) > 0) {
        if (zclock_mono () > deadline) {
            PGresult *res = s_sql ("SELECT state, coalesce (client_port, -1), query FROM "
                                   "pg_stat_activity WHERE application_name = $1", 1, app,
                                   NULL, NULL);
            for (int i = 0; i < PQntuples (res); i++)
                fprintf (stderr, "still: %s port %s: %s\n", PQgetvalue (res, i, 0),
                         PQgetvalue (res, i, 1), PQgetvalue (res, i, 2));
            PQclear (res);
            fail_msg ("the worker's database connection outlived the proxy");
        }
        zclock_sleep (20);
    }
    long long unavailable = s_stat (&s_main, "unavailable");
    assert_int_equal (s_webhook (&s_main, s_ep_ok, key, "push", body, strlen (body), s_secret,
                                 NULL, 0), 503);
    assert_int_equal (s_events (key), 0);
    assert_int_equal (s_stat (&s_main, "unavailable"), unavailable + 1);
    //  Back: the provider sends again until it gets its 2xx; stored once.
    fake_proxy_set_down (s_proxy, false);
    deadline = zclock_mono () + WAIT_MS;
    int http = 0;
    while (http != 200 && zclock_mono () < deadline)
        http = s_webhook (&s_main, s_ep_ok, key, "push", body, strlen (body), s_secret, NULL, 0);
    assert_int_equal (http, 200);
    assert_int_equal (s_events (key), 1);
}

//  A job whose deadline passes while its batch commits: never answered,
//  its event stored all the same.
static void
test_abandoned (void **state)
{
    char key [64], body [128], corr_id [64];
    s_key (key, sizeof key, "late");
    snprintf (body, sizeof body, "{\"late\":\"%s\"}", key);
    long long abandoned = s_stat (&s_main, "abandoned");
    //  Another session holds webhook_events: the statement waits.
    PGconn *locker = PQconnectdb (s_conninfo);
    assert_int_equal (PQstatus (locker), CONNECTION_OK);
    PGresult *res = PQexec (locker, "BEGIN; LOCK TABLE webhook_events IN EXCLUSIVE MODE");
    assert_int_equal (PQresultStatus (res), PGRES_COMMAND_OK);
    PQclear (res);
    snprintf (corr_id, sizeof corr_id, "late%d", ++s_seq);
    s_job_timeout_ms = 300;
    s_send_webhook (&s_main, corr_id, s_ep_ok, key, "push", body, strlen (body), s_secret);
    s_job_timeout_ms = JOB_TIMEOUT_MS;
    //  The worker gives the job up at its deadline (pings answer meanwhile:
    //  a RESULT for the late job would fail s_op's corr_id check).
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (s_stat (&s_main, "abandoned") == abandoned) {
        if (zclock_mono () > deadline)
            fail_msg ("the late job was not abandoned");
    }
    assert_int_equal (s_events (key), 0);
    res = PQexec (locker, "COMMIT");
    assert_int_equal (PQresultStatus (res), PGRES_COMMAND_OK);
    PQclear (res);
    PQfinish (locker);
    //  The commit happens; nobody is answered.
    while (s_events (key) == 0) {
        if (zclock_mono () > deadline)
            fail_msg ("the late job's event was not stored");
        assert_int_equal (s_stat (&s_main, "abandoned"), abandoned + 1);
    }
    assert_int_equal (s_stat (&s_main, "abandoned"), abandoned + 1);
}

//  `count` requests at once to `proc`: every one 200, every event stored
//  once. Returns the statements they took.
static long long
s_burst (s_proc_t *proc, int count, const char *what)
{
    long long batches = s_stat (proc, "batches");
    char (*keys) [64] = calloc ((size_t) count, sizeof *keys);
    char (*corr_ids) [64] = calloc ((size_t) count, sizeof *corr_ids);
    bool *answered = calloc ((size_t) count, sizeof *answered);
    for (int i = 0; i < count; i++) {
        s_key (keys [i], sizeof keys [i], what);
        snprintf (corr_ids [i], sizeof corr_ids [i], "b%d", ++s_seq);
        char body [128];
        snprintf (body, sizeof body, "{\"burst\":%d}", i);
        s_send_webhook (proc, corr_ids [i], s_ep_ok, keys [i], "push", body, strlen (body),
                        s_secret);
    }
    for (int n = 0; n < count; n++) {
        char got [SB_MAX_CORR_ID_LEN + 1];
        sb_status_t status;
        char *text = NULL;
        if (s_next_result (proc, got, &status, &text, WAIT_MS))
            fail_msg ("%s: %d of %d answered", what, n, count);
        assert_int_equal (status, SB_STATUS_OK);
        int i = 0;
        while (i < count && strcmp (corr_ids [i], got) != 0)
            i++;
        assert_true (i < count);
        assert_false (answered [i]);
        answered [i] = true;
        assert_int_equal (s_http (text, NULL, 0, NULL, 0), 200);
        free (text);
    }
    char pattern [64];
    snprintf (pattern, sizeof pattern, "%s-%s-%%", s_prefix, what);
    assert_int_equal (s_number ("SELECT count(*) FROM webhook_events WHERE event_key LIKE $1",
                                1, pattern, NULL, NULL), count);
    assert_int_equal (s_number ("SELECT count(DISTINCT event_key) FROM webhook_events "
                                "WHERE event_key LIKE $1", 1, pattern, NULL, NULL), count);
    free (keys);
    free (corr_ids);
    free (answered);
    return s_stat (proc, "batches") - batches;
}

static void
test_group_commit (void **state)
{
    long long statements = s_burst (&s_main, CONCURRENT, "burst");
    fprintf (stderr, "%d requests at once: %lld statements\n", CONCURRENT, statements);
    assert_true (statements >= 1);
    assert_true (statements < CONCURRENT);
    assert_true (s_stat (&s_main, "batch_max") > 1);
}

static void
test_batch_max_one (void **state)
{
    long long statements = s_burst (&s_one, CONCURRENT_ONE, "alone");
    assert_int_equal (statements, CONCURRENT_ONE);
    assert_int_equal (s_stat (&s_one, "batch_max"), 1);
}

//  ---------------------------------------------------------------------
//  Set-up and clean-up

//  Starts a webhook worker; `proxied`: its database through the proxy.
static int
s_spawn (s_proc_t *proc, const char *name, const char *batch_max, bool proxied)
{
    proc->broker = fake_broker_new (sb_harness_free_port ());
    if (!proc->broker)
        return -1;
    snprintf (proc->log, sizeof proc->log, "/tmp/sb-38-wi-%d-%s.log", (int) getpid (), name);
    char heartbeat [16], db [1024], migrations [512];
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    if (proxied)
        snprintf (db, sizeof db, "--db=%s host=127.0.0.1 port=%d application_name=%s-%s",
                  s_conninfo, fake_proxy_port (s_proxy), s_prefix, name);
    else
        snprintf (db, sizeof db, "--db=%s application_name=%s-%s", s_conninfo, s_prefix, name);
    snprintf (migrations, sizeof migrations, "--migrations=%s/db/migrations", SB_SOURCE_DIR);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "webhook", "--broker", proc->broker->endpoint,
        "--credit", "512", "--heartbeat-ms", heartbeat, db, migrations,
        "--secret-key-file=" SECRET_FILE, "--webhook-batch-max", batch_max,
        "--log-level", "debug", NULL
    };
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
    if (fake_broker_recv (proc->broker, &msg, 30000) || msg.command != SB_CMD_READY) {
        sb_msg_reset (&msg);
        return -1;
    }
    sb_msg_reset (&msg);
    return 0;
}

static int
s_setup (void **state)
{
    s_conninfo = sb_harness_pg_conninfo ();
    if (!s_conninfo)
        return -1;
    snprintf (s_prefix, sizeof s_prefix, "wi%x%04x", (unsigned) getpid (),
              (unsigned) (zclock_time () & 0xffff));
    snprintf (s_tenant, sizeof s_tenant, "%s-t1", s_prefix);
    snprintf (s_ep_ok, sizeof s_ep_ok, "we_%s_ok", s_prefix);
    snprintf (s_ep_off, sizeof s_ep_off, "we_%s_off", s_prefix);
    snprintf (s_ep_none, sizeof s_ep_none, "we_%s_none", s_prefix);
    snprintf (s_sub_push, sizeof s_sub_push, "ws_%s_push", s_prefix);
    snprintf (s_sub_issues, sizeof s_sub_issues, "ws_%s_issues", s_prefix);
    snprintf (s_sub_off, sizeof s_sub_off, "ws_%s_off", s_prefix);
    s_pg = PQconnectdb (s_conninfo);
    if (PQstatus (s_pg) != CONNECTION_OK)
        return -1;
    PQclear (PQexec (s_pg, "SELECT set_config ('switchboard.system', 'on', false)"));
    //  The token role, in process, on a worker never run: it migrates and
    //  seals (sb_conn_seal) as the admin API does.
    s_tw = sb_worker_new ("tcp://127.0.0.1:9", "token", 1, HEARTBEAT_MS);
    if (!s_tw)
        return -1;
    char migrations [512];
    snprintf (migrations, sizeof migrations, "%s/db/migrations", SB_SOURCE_DIR);
    sb_token_config_t config = {
        .conninfo = s_conninfo, .migrations_dir = migrations, .issuer = "",
        .secret_key_file = SECRET_FILE, .connectors_dir = "", .hash_threads = 1,
        .refresh_window_s = 300, .refresh_sweep_ms = 0,
    };
    s_trole = sb_token_role_new (s_tw, &config);
    if (!s_trole)
        return -1;
    PQclear (s_sql ("INSERT INTO tenants (id, name) VALUES ($1, $1)", 1, s_tenant, NULL, NULL));
    s_endpoint_insert (s_ep_ok, true);
    s_endpoint_insert (s_ep_off, false);
    s_subscription_insert (s_sub_push, "{push}", NULL, true);
    s_subscription_insert (s_sub_issues, "{issues.*}", CONNECTOR, true);
    s_subscription_insert (s_sub_off, "{}", NULL, false);
    //  The main worker reaches PostgreSQL through the proxy. It is started
    //  last: a child inherits the proxy's sockets open at its fork, and
    //  would keep a cut connection alive.
    if (s_spawn (&s_one, "one", "1", false))
        return -1;
    const char *port_at = strstr (s_conninfo, "port=");
    if (!port_at)
        return -1;
    s_proxy = fake_proxy_new ((int) strtol (port_at + 5, NULL, 10));
    if (!s_proxy || s_spawn (&s_main, "main", "256", true))
        return -1;
    return 0;
}

static bool
s_log_holds (const char *path, const char *needle)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    char line [8192];
    bool found = false;
    while (!found && fgets (line, sizeof line, file))
        found = strstr (line, needle) != NULL;
    fclose (file);
    return found;
}

//  Stops the workers (they must exit 0), then neither log holds a secret
//  or a signature; the refusals were logged with a reason.
static void
test_logs_clean (void **state)
{
    s_proc_t *procs [] = { &s_main, &s_one };
    for (int i = 0; i < 2; i++) {
        int wstatus = sb_harness_stop (procs [i]->pid);
        procs [i]->pid = -1;
        assert_true (WIFEXITED (wstatus));
        assert_int_equal (WEXITSTATUS (wstatus), 0);
    }
    char *why = NULL;
    char *master = sb_secret_read_file (SECRET_FILE, &why);
    assert_non_null (master);
    for (int i = 0; i < 2; i++) {
        assert_false (s_log_holds (procs [i]->log, s_secret));
        assert_false (s_log_holds (procs [i]->log, master));
        for (int s = 0; s < s_signature_count; s++)
            assert_false (s_log_holds (procs [i]->log, s_signatures [s]));
    }
    sb_secret_free (&master);
    assert_true (s_log_holds (s_main.log, "X-Hub-Signature-256 does not match"));
    assert_true (s_log_holds (s_main.log, "is disabled"));
    assert_true (s_log_holds (s_main.log, "webhook_stats"));
}

static int
s_teardown (void **state)
{
    s_proc_t *procs [] = { &s_main, &s_one };
    for (int i = 0; i < 2; i++) {
        if (procs [i]->pid > 0)
            sb_harness_stop (procs [i]->pid);
        fake_broker_destroy (&procs [i]->broker);
        if (procs [i]->log [0])
            unlink (procs [i]->log);
    }
    fake_proxy_destroy (&s_proxy);
    sb_token_role_destroy (&s_trole);
    sb_worker_destroy (&s_tw);
    int rc = -1;
    if (s_pg && PQstatus (s_pg) == CONNECTION_OK) {
        const char *params [] = { s_tenant };
        PGresult *res = PQexecParams (s_pg, "DELETE FROM tenants WHERE id = $1", 1, NULL,
                                      params, NULL, NULL, 0);
        rc = PQresultStatus (res) == PGRES_COMMAND_OK? 0: -1;
        PQclear (res);
    }
    PQfinish (s_pg);
    free (s_conninfo);
    return rc;
}

int
main (void)
{
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_keys_open_sealed),
        cmocka_unit_test (test_store_once),
        cmocka_unit_test (test_odd_keys),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_wrong_signature_not_stored),
        cmocka_unit_test (test_deliveries),
        cmocka_unit_test (test_events_read),
        cmocka_unit_test (test_db_down),
        cmocka_unit_test (test_abandoned),
        cmocka_unit_test (test_group_commit),
        cmocka_unit_test (test_batch_max_one),
        cmocka_unit_test (test_logs_clean),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
