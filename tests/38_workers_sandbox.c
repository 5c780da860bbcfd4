/*  tests/38_workers_sandbox.c — the api worker (sb-worker --role api)
    against the real sandbox SaaS (sb-sandbox) and a fake broker: tool calls
    through the sandbox-crm connector, calls held at once under the
    sandbox's injected delay, a deadline shorter than the delay, and a 503
    followed by success. Faults go through the sandbox's admin API
    (POST/DELETE /_sandbox/faults). Then a connector whose auth is
    api_key_header against a sandbox that takes its key only in that header
    (sb-sandbox --api-key-header): the worker must send the key there, not
    under Authorization. */
#include <czmq.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_harness.h"

#define CREDIT          8
#define WAIT_MS         5000

static pid_t s_sandbox = -1;
static pid_t s_worker = -1;
static fake_broker_t *s_broker;
static char s_sandbox_url [64];
static char s_keyed_dir [128];              /* connectors folder of the keyed group */

static void
s_faults (const char *method, const char *json)
{
    char url [128];
    snprintf (url, sizeof url, "%s/_sandbox/faults", s_sandbox_url);
    long status = 0;
    int rc = sb_harness_http (method, url, (const char *[]) { "Content-Type: application/json", NULL },
                              json, json ? strlen (json) : 0, 5000, &status, NULL);
    assert_int_equal (rc, 0);
    assert_true (status >= 200 && status < 300);
}

//  Starts the sandbox (wanting its key in `key_header`, or as Bearer when
//  NULL) and an api worker loading `connectors` with `env`, whose
//  connector `name` is pointed at the sandbox.
static void
s_start (const char *key_header, const char *connectors, const char *name,
         const char *const env [])
{
    zsys_handler_set (NULL);
    int port = sb_harness_free_port ();
    char listen [64];
    snprintf (listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf (s_sandbox_url, sizeof s_sandbox_url, "http://127.0.0.1:%d", port);
    const char *sandbox_argv [] = {
        sb_harness_bin ("sb-sandbox"), "--listen", listen, "--api-key", "worker-test-key",
        "--log-level", "warn", key_header ? "--api-key-header" : NULL, key_header, NULL
    };
    s_sandbox = sb_harness_spawn (sandbox_argv, NULL);
    assert_true (s_sandbox > 0);
    char health [128];
    snprintf (health, sizeof health, "%s/healthz", s_sandbox_url);
    assert_int_equal (sb_harness_wait_http_ok (health, SB_HARNESS_WAIT_MS), 0);

    s_broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (s_broker);
    char credit [16], urls [128];
    snprintf (credit, sizeof credit, "%d", CREDIT);
    snprintf (urls, sizeof urls, "%s=%s", name, s_sandbox_url);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "api", "--broker", s_broker->endpoint,
        "--credit", credit, "--heartbeat-ms", "250", "--connectors", connectors,
        "--connector-urls", urls, "--log-level", "warn", NULL
    };
    s_worker = sb_harness_spawn (argv, env);
    assert_true (s_worker > 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, 10000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    assert_int_equal (msg.credit, CREDIT);
    sb_msg_reset (&msg);
}

static int
s_setup (void **state)
{
    char connectors [512];
    snprintf (connectors, sizeof connectors, "%s/connectors", SB_SOURCE_DIR);
    s_start (NULL, connectors, "sandbox-crm",
             (const char *[]) { "SB_SANDBOX_CRM_TOKEN=worker-test-key", NULL });
    return 0;
}

//  The sandbox CRM's get_account in a connector that sends the sandbox's
//  key as "X-Api-Key: <key>" (named sandbox-crm, as the fake broker's jobs
//  name the connector of their tool).
static const char *s_keyed_connector =
    "{\"name\": \"sandbox-crm\", \"title\": \"Keyed CRM\", \"display_name\": \"the keyed CRM\",\n"
    " \"base_url\": \"http://127.0.0.1:1\",\n"
    " \"auth\": {\"type\": \"api_key_header\", \"credential\": \"shared\", \"token_env\": \"SB_KEYED_CRM_KEY\",\n"
    "          \"header\": \"X-Api-Key\"},\n"
    " \"tools\": [{\"name\": \"get_account\", \"description\": \"Get one account.\",\n"
    "   \"inputSchema\": {\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"string\"}},\n"
    "                   \"required\": [\"id\"]},\n"
    "   \"request\": {\"method\": \"GET\", \"path\": \"/v1/accounts/{id}\"},\n"
    "   \"result\": {\"mapping\": \"object\", \"noun\": \"account\"}}]}\n";

static int
s_setup_keyed (void **state)
{
    snprintf (s_keyed_dir, sizeof s_keyed_dir, "/tmp/sb-38-keyed-%d", (int) getpid ());
    assert_int_equal (mkdir (s_keyed_dir, 0700), 0);
    char path [256];
    snprintf (path, sizeof path, "%s/keyed-crm.json", s_keyed_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_true (fputs (s_keyed_connector, file) >= 0);
    assert_int_equal (fclose (file), 0);
    s_start ("X-Api-Key", s_keyed_dir, "sandbox-crm",
             (const char *[]) { "SB_KEYED_CRM_KEY=worker-test-key", NULL });
    return 0;
}

static int
s_teardown (void **state)
{
    if (s_worker > 0)
        sb_harness_stop (s_worker);
    if (s_sandbox > 0)
        sb_harness_stop (s_sandbox);
    s_worker = s_sandbox = -1;
    fake_broker_destroy (&s_broker);
    return 0;
}

static int
s_teardown_keyed (void **state)
{
    s_teardown (state);
    char path [256];
    snprintf (path, sizeof path, "%s/keyed-crm.json", s_keyed_dir);
    unlink (path);
    rmdir (s_keyed_dir);
    return 0;
}

static json_t *
s_call (const char *corr_id, uint32_t timeout_ms, const char *tool, const char *args)
{
    assert_int_equal (fake_broker_send_op (s_broker, corr_id, timeout_ms, SB_FLAG_RETRY_SAFE,
                                           "tools/call", tool, args), 0);
    sb_status_t status;
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, corr_id, (int) timeout_ms + WAIT_MS, &status, &text), 0);
    assert_int_equal (status, SB_STATUS_OK);
    json_t *json = json_loads (text, 0, NULL);
    if (!json)
        fail_msg ("result is not JSON: %s", text);
    free (text);
    return json;
}

static void
test_tool_calls (void **state)
{
    json_t *result = s_call ("sb-1", 5000, "search_accounts", "{\"query\":\"a\",\"limit\":5}");
    if (json_is_true (json_object_get (result, "isError")))
        fail_msg ("search_accounts failed: %s", json_dumps (result, 0));
    assert_non_null (json_object_get (result, "structuredContent"));
    json_decref (result);
    result = s_call ("sb-2", 5000, "get_account", "{\"id\":\"acc_0001\"}");
    assert_false (json_is_true (json_object_get (result, "isError")));
    json_decref (result);
    result = s_call ("sb-3", 5000, "get_account", "{\"id\":\"acc_9999999\"}");
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_decref (result);
}

static void
test_concurrent (void **state)
{
    const int delay = 600;
    char fault [128];
    snprintf (fault, sizeof fault, "{\"delay_ms\":%d,\"count\":%d}", delay, CREDIT);
    s_faults ("POST", fault);
    int64_t start = zclock_mono ();
    for (int i = 0; i < CREDIT; i++) {
        char corr_id [32];
        snprintf (corr_id, sizeof corr_id, "par-%d", i);
        assert_int_equal (fake_broker_send_op (s_broker, corr_id, 10000, SB_FLAG_RETRY_SAFE,
                                               "tools/call", "get_account", "{\"id\":\"acc_0002\"}"), 0);
    }
    for (int i = 0; i < CREDIT; i++) {
        sb_msg_t msg = { 0 };
        assert_int_equal (fake_broker_recv (s_broker, &msg, 10000), 0);
        assert_int_equal (msg.command, SB_CMD_RESULT);
        assert_int_equal (msg.status, SB_STATUS_OK);
        sb_msg_reset (&msg);
    }
    int64_t elapsed = zclock_mono () - start;
    s_faults ("DELETE", NULL);
    assert_true (elapsed >= delay);
    assert_true (elapsed < 3 * delay);      // serially it would take 8 × delay
}

static void
test_deadline (void **state)
{
    s_faults ("POST", "{\"delay_ms\":1500,\"count\":1}");
    assert_int_equal (fake_broker_send_op (s_broker, "sb-late", 300, SB_FLAG_RETRY_SAFE,
                                           "tools/call", "get_account", "{\"id\":\"acc_0001\"}"), 0);
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (s_broker, &msg, 2500) == 0)
        fail_msg ("unexpected %s for %s", sb_cmd_name (msg.command), msg.corr_id);
    s_faults ("DELETE", NULL);
}

static void
test_retry_503 (void **state)
{
    s_faults ("POST", "{\"status\":503,\"count\":1}");
    json_t *result = s_call ("sb-retry", 5000, "get_account", "{\"id\":\"acc_0001\"}");
    assert_false (json_is_true (json_object_get (result, "isError")));
    json_decref (result);
    s_faults ("DELETE", NULL);
}

//  The keyed sandbox answers only a request carrying the key in X-Api-Key:
//  the call succeeds when the worker sends it there, and is refused
//  (401, upstream_auth) when it goes under Authorization instead.
static void
test_api_key_header (void **state)
{
    char url [128];
    snprintf (url, sizeof url, "%s/v1/accounts/acc_0001", s_sandbox_url);
    long status = 0;
    assert_int_equal (sb_harness_http ("GET", url, (const char *[]) {
                          "Authorization: Bearer worker-test-key", NULL }, NULL, 0, 5000,
                          &status, NULL), 0);
    assert_int_equal (status, 401);
    assert_int_equal (sb_harness_http ("GET", url, (const char *[]) {
                          "X-Api-Key: worker-test-key", NULL }, NULL, 0, 5000,
                          &status, NULL), 0);
    assert_int_equal (status, 200);

    json_t *result = s_call ("keyed-1", 5000, "get_account", "{\"id\":\"acc_0001\"}");
    if (json_is_true (json_object_get (result, "isError")))
        fail_msg ("get_account with the key in X-Api-Key failed: %s", json_dumps (result, 0));
    json_t *id = json_object_get (json_object_get (result, "structuredContent"), "id");
    assert_string_equal (json_string_value (id), "acc_0001");
    json_decref (result);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_tool_calls),
        cmocka_unit_test (test_concurrent),
        cmocka_unit_test (test_deadline),
        cmocka_unit_test (test_retry_503),
    };
    const struct CMUnitTest keyed [] = {
        cmocka_unit_test (test_api_key_header),
    };
    int failed = cmocka_run_group_tests (tests, s_setup, s_teardown);
    failed += cmocka_run_group_tests (keyed, s_setup_keyed, s_teardown_keyed);
    return failed;
}
