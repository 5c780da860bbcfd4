/*  tests/38_workers_api_creds_broker.c — the api worker's tenant
    credentials through the real broker: the broker in process
    (sb_broker_actor, tests/20_broker_support.c), the product's sb-worker
    --role api as a process, a fake token service (a worker core in a
    thread with a test role that answers connection/credential as
    scripted per tenant and counts what it is asked), a gateway socket,
    and the fake upstream of tests/38_workers_fake.c.

    Covered: two tenants each get their own credential (the upstream sees
    each secret) and the request carries the caller's tenant, subject and
    connector; a cache hit asks nothing; 100 calls at once ask once; an
    upstream 401 asks once with {"stale": version} and the call is retried
    with the new credential; a missing connection answers the link. The
    fine points (every answer shape, polling, deadlines) are in
    38_workers_api_creds, against a fake broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "20_broker_support.h"
#include "38_workers_fake.h"
#include "sb_harness.h"
#include "sb_clock.h"
#include "sb_job.h"
#include "sb_worker.h"

#define S_HEARTBEAT_MS  100
#define S_CALL_MS       10000
#define S_MANY          100
#define S_CONNECT_URL   "https://sb.example/connect/tenant-crm?ticket=abc"

//  ---------------------------------------------------------------------
//  The fake token service: what it was asked (guarded by s_lock)

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_asked_acme, s_asked_globex, s_asked_many, s_asked_other;
static char s_last_subject [SB_MAX_SUBJECT_LEN + 1];
static char s_last_data [64];
static char s_last_connector [SB_MAX_NAME_LEN + 1];

static void
s_done_json (sb_worker_job_t **job_p, json_t *value)
{
    char *text = json_dumps (value, JSON_COMPACT);
    sb_worker_job_done (job_p, SB_STATUS_OK, text);
    free (text);
    json_decref (value);
}

static json_t *
s_connected (const char *secret, int version)
{
    return json_pack ("{s:s, s:s, s:s, s:i, s:i, s:{}}", "status", "connected", "kind", "oauth2",
                      "secret", secret, "version", version, "expires_in", 3600, "vars");
}

static void
s_token_start (void *state, sb_worker_job_t *job)
{
    const sb_job_t *spec = sb_worker_job_spec (job);
    if (streq (spec->op, "stop")) {
        sb_worker_stop ((sb_worker_t *) state);
        sb_worker_job_done (&job, SB_STATUS_OK, "{}");
        return;
    }
    if (!streq (spec->op, "connection/credential")) {
        sb_worker_job_fail_unknown_op (&job);
        return;
    }
    const char *tenant = sb_worker_job_tenant (job);
    json_t *data = spec->data ? json_loads (spec->data, 0, NULL) : NULL;
    json_int_t stale = json_integer_value (json_object_get (data, "stale"));
    json_decref (data);
    pthread_mutex_lock (&s_lock);
    snprintf (s_last_subject, sizeof s_last_subject, "%s", spec->subject ? spec->subject : "(none)");
    snprintf (s_last_data, sizeof s_last_data, "%s", spec->data ? spec->data : "(none)");
    snprintf (s_last_connector, sizeof s_last_connector, "%s",
              spec->connector ? spec->connector : "(none)");
    int *count = streq (tenant, "acme") ? &s_asked_acme : streq (tenant, "globex") ? &s_asked_globex
               : streq (tenant, "many") ? &s_asked_many : &s_asked_other;
    (*count)++;
    pthread_mutex_unlock (&s_lock);
    if (streq (tenant, "acme"))
        s_done_json (&job, stale >= 1 ? s_connected ("acme-secret-2", 2) : s_connected ("acme-secret", 1));
    else
    if (streq (tenant, "globex"))
        s_done_json (&job, s_connected ("globex-secret", 1));
    else
    if (streq (tenant, "many"))
        s_done_json (&job, s_connected ("many-secret", 1));
    else
    if (streq (tenant, "newco"))
        s_done_json (&job, json_pack ("{s:s, s:s, s:s}", "status", "missing",
                                      "detail", "No connection yet.", "connect_url", S_CONNECT_URL));
    else
        sb_worker_job_fail (&job, "no such tenant in this test");
}

static void
s_token_abandon (void *state, sb_worker_job_t *job)
{
}

static const sb_worker_role_t s_token_role = { s_token_start, s_token_abandon };

//  ---------------------------------------------------------------------
//  The farm

static tb_broker_t *s_broker;
static zsock_t *s_gateway;
static sb_worker_t *s_token;
static pthread_t s_token_thread;
static int s_token_rc;
static pid_t s_api = -1;
static fake_upstream_t *s_up;

static void *
s_run (void *arg)
{
    s_token_rc = sb_worker_run (s_token);
    return NULL;
}

static int
s_setup (void **state)
{
    zsys_handler_set (NULL);
    sb_broker_config_t config;
    tb_config (&config);
    s_broker = tb_broker_start (&config);
    s_gateway = tb_gateway (s_broker);
    s_up = fake_upstream_new ();
    assert_non_null (s_up);
    s_token = sb_worker_new (s_broker->backend, "token", 16, S_HEARTBEAT_MS);
    assert_non_null (s_token);
    sb_worker_set_role (s_token, &s_token_role, s_token);
    assert_int_equal (pthread_create (&s_token_thread, NULL, s_run, NULL), 0);
    char urls [128];
    snprintf (urls, sizeof urls, "tenant-crm=%s", fake_upstream_url (s_up));
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "api", "--broker", s_broker->backend,
        "--credit", "128", "--heartbeat-ms", "200",
        "--connectors", SB_SOURCE_DIR "/tests/fixtures/connectors/tenant",
        "--connector-urls", urls, "--log-level", "warn", NULL
    };
    s_api = sb_harness_spawn (argv, NULL);
    assert_true (s_api > 0);
    return tb_wait_counter (s_broker, offsetof (sb_broker_counters_t, workers), 2, 10000) ? 0 : -1;
}

//  Sends `service` a job as a gateway would (the REPLY: s_reply).
static void
s_request (const char *service, const char *tenant, const char *corr_id, const sb_job_t *job)
{
    zframe_t *payload = sb_job_encode (job);
    assert_non_null (payload);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, corr_id, service, tenant, S_CALL_MS, 0, &payload), 0);
    assert_int_equal (sb_msg_send (s_gateway, &msg, NULL), 0);
    sb_msg_reset (&msg);
}

//  The next REPLY on the gateway: its corr_id (into `corr_id`) and result.
static json_t *
s_reply (char *corr_id)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (s_gateway, &msg, S_CALL_MS + TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_int_equal (msg.status, SB_STATUS_OK);
    snprintf (corr_id, SB_MAX_CORR_ID_LEN + 1, "%s", msg.corr_id);
    sb_job_result_t result = { 0 };
    assert_non_null (msg.payload);
    assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload),
                                            &result), 0);
    json_t *json = json_loads (result.result, 0, NULL);
    assert_non_null (json);
    sb_job_result_clear (&result);
    sb_msg_reset (&msg);
    return json;
}

static void
s_send_call (const char *corr_id, const char *tenant, const char *subject, const char *inputs)
{
    sb_job_t job = { .op = sb_unconst ("tools/call"), .tool = sb_unconst ("tcrm_get_account"),
                     .connector = sb_unconst ("tenant-crm"), .args = sb_unconst ("{\"id\":\"acc_0001\"}"),
                     .subject = sb_unconst (subject), .inputs = sb_unconst (inputs), .round = 1 };
    s_request ("api", tenant, corr_id, &job);
}

//  A call answered with an account fetched with `auth`.
static void
s_call_ok (const char *corr_id, const char *tenant, const char *subject, const char *auth)
{
    s_send_call (corr_id, tenant, subject, NULL);
    char got [SB_MAX_CORR_ID_LEN + 1];
    json_t *result = s_reply (got);
    assert_string_equal (got, corr_id);
    if (json_is_true (json_object_get (result, "isError")))
        fail_msg ("%s: %s", corr_id, json_dumps (result, JSON_COMPACT));
    assert_non_null (json_object_get (result, "structuredContent"));
    json_decref (result);
    char seen [256];
    fake_upstream_last_auth (s_up, seen, sizeof seen);
    assert_string_equal (seen, auth);
}

static int
s_asked (int *counter)
{
    pthread_mutex_lock (&s_lock);
    int value = *counter;
    pthread_mutex_unlock (&s_lock);
    return value;
}

static int
s_teardown (void **state)
{
    if (s_api > 0 && sb_harness_alive (s_api))
        assert_int_equal (sb_harness_stop (s_api), 0);
    sb_job_t stop = { .op = sb_unconst ("stop") };
    s_request ("token", "acme", "stop-token", &stop);
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    json_t *reply = s_reply (corr_id);
    json_decref (reply);
    pthread_join (s_token_thread, NULL);
    assert_int_equal (s_token_rc, 0);
    sb_worker_destroy (&s_token);
    zsock_destroy (&s_gateway);
    tb_broker_stop (&s_broker);
    fake_upstream_destroy (&s_up);
    return 0;
}

//  ---------------------------------------------------------------------
//  Tests

static void
test_two_tenants_and_cache (void **state)
{
    s_call_ok ("a-1", "acme", "user:ann", "Bearer acme-secret");
    assert_int_equal (s_asked (&s_asked_acme), 1);
    pthread_mutex_lock (&s_lock);
    assert_string_equal (s_last_subject, "user:ann");
    assert_string_equal (s_last_connector, "tenant-crm");
    assert_string_equal (s_last_data, "{}");
    pthread_mutex_unlock (&s_lock);
    s_call_ok ("g-1", "globex", "user:gus", "Bearer globex-secret");
    assert_int_equal (s_asked (&s_asked_globex), 1);
    s_call_ok ("a-2", "acme", "user:ann", "Bearer acme-secret");
    s_call_ok ("g-2", "globex", "user:gus", "Bearer globex-secret");
    assert_int_equal (s_asked (&s_asked_acme), 1);
    assert_int_equal (s_asked (&s_asked_globex), 1);
    sb_broker_counters_t c = tb_counters (s_broker);
    assert_int_equal (c.worker_requests, 2);
    assert_int_equal (c.worker_requests_refused, 0);
}

static void
test_many_ask_once (void **state)
{
    fake_upstream_reset (s_up);
    for (int i = 0; i < S_MANY; i++) {
        char corr_id [32];
        snprintf (corr_id, sizeof corr_id, "m-%d", i);
        s_send_call (corr_id, "many", "user:mo", NULL);
    }
    for (int i = 0; i < S_MANY; i++) {
        char corr_id [SB_MAX_CORR_ID_LEN + 1];
        json_t *result = s_reply (corr_id);
        assert_false (json_is_true (json_object_get (result, "isError")));
        json_decref (result);
    }
    assert_int_equal (s_asked (&s_asked_many), 1);
    assert_int_equal (fake_upstream_requests (s_up), S_MANY);
}

static void
test_401_renews (void **state)
{
    fake_upstream_reset (s_up);
    fake_upstream_refuse_auth (s_up, "Bearer acme-secret");
    s_call_ok ("a-3", "acme", "user:ann", "Bearer acme-secret-2");
    assert_int_equal (s_asked (&s_asked_acme), 2);
    pthread_mutex_lock (&s_lock);
    assert_string_equal (s_last_data, "{\"stale\":1}");
    pthread_mutex_unlock (&s_lock);
    assert_int_equal (fake_upstream_requests (s_up), 2);
    s_call_ok ("a-4", "acme", "user:ann", "Bearer acme-secret-2");
    assert_int_equal (s_asked (&s_asked_acme), 2);
}

static void
test_missing_answers_the_link (void **state)
{
    s_send_call ("n-1", "newco", "user:ny", "{}");
    char corr_id [SB_MAX_CORR_ID_LEN + 1];
    json_t *result = s_reply (corr_id);
    assert_string_equal (corr_id, "n-1");
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_t *meta = json_object_get (result, "_meta");
    assert_string_equal (json_string_value (json_object_get (meta, "error_type")), "connection_required");
    assert_string_equal (json_string_value (json_object_get (meta, "connect_url")), S_CONNECT_URL);
    json_decref (result);
    pthread_mutex_lock (&s_lock);
    assert_string_equal (s_last_subject, "user:ny");
    pthread_mutex_unlock (&s_lock);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_two_tenants_and_cache),
        cmocka_unit_test (test_many_ask_once),
        cmocka_unit_test (test_401_renews),
        cmocka_unit_test (test_missing_answers_the_link),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
