/*  tests/38_workers_api.c — the api worker as a real process (the test
    worker sb-worker-fixtures --role api: the product's sb-worker with the
    conformance fixtures as builtin tools) between a fake broker (ROUTER +
    the real codec) and a fake upstream HTTP server that serves the
    sandbox-crm connector's account endpoints (tests/38_workers_fake.c):
    registration and heartbeats, tool calls, many calls held at once, deadlines, retries, size caps, bad jobs,
    confirmation of a tool that asks first (the ASK answered as a client
    would: accept, decline, cancel, an error), results checked against the
    tool's outputSchema, broker restarts and a graceful drain on SIGTERM;
    the tasks extension's fixtures as older revisions run them (the promote
    NOTIFY, then questions by ASK), and the promote signal of a connector
    tool that may become a task once its upstream request runs longer than
    --task-promote-ms (a second worker, the product's sb-worker, on a
    connector folder of its own); and the product's sb-worker, which has
    no builtin tools, refusing the fixture connectors at start-up. */
#include <czmq.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "38_workers_fake.h"
#include "sb_harness.h"
#include "sb_attr.h"

#define CREDIT          8
#define HEARTBEAT_MS    200
#define WAIT_MS         5000

static fake_upstream_t *s_up;
static fake_broker_t *s_broker;
static pid_t s_worker = -1;

static int64_t
s_now_ms (void)
{
    return zclock_mono ();
}

static int
s_setup (void **state)
{
    zsys_handler_set (NULL);
    s_up = fake_upstream_new ();
    assert_non_null (s_up);
    s_broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (s_broker);

    char credit [16], heartbeat [16], urls [128], connectors [512];
    snprintf (credit, sizeof credit, "%d", CREDIT);
    snprintf (heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    snprintf (urls, sizeof urls, "sandbox-crm=%s", fake_upstream_url (s_up));
    snprintf (connectors, sizeof connectors, "%s", SB_TEST_CONNECTORS);
    const char *argv [] = {
        sb_harness_bin ("sb-worker-fixtures"), "--role", "api", "--broker", s_broker->endpoint,
        "--credit", credit, "--heartbeat-ms", heartbeat, "--connectors", connectors,
        "--connector-urls", urls, "--log-level", "info", NULL
    };
    const char *env [] = { "SB_SANDBOX_CRM_TOKEN=test-token", NULL };
    s_worker = sb_harness_spawn (argv, env);
    assert_true (s_worker > 0);
    return 0;
}

static int
s_teardown (void **state)
{
    if (s_worker > 0 && sb_harness_alive (s_worker))
        sb_harness_stop (s_worker);
    fake_broker_destroy (&s_broker);
    fake_upstream_destroy (&s_up);
    return 0;
}

//  Sends a job and waits for its result; returns the parsed result JSON.
static json_t *
s_call (const char *corr_id, uint32_t timeout_ms, uint32_t flags, const char *op,
        const char *tool, const char *args, sb_status_t *status)
{
    assert_int_equal (fake_broker_send_op (s_broker, corr_id, timeout_ms, flags, op, tool, args), 0);
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, corr_id, (int) timeout_ms + WAIT_MS, status, &text), 0);
    json_t *json = json_loads (text, 0, NULL);
    if (!json)
        fail_msg ("result is not JSON: %s", text);
    free (text);
    return json;
}

static const char *
s_text_of (json_t *result)
{
    return json_string_value (json_object_get (json_array_get (json_object_get (result, "content"), 0), "text"));
}

static void
test_ready_and_heartbeats (void **state)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, 10000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    assert_string_equal (msg.service, "api");
    assert_int_equal (msg.credit, CREDIT);
    assert_int_equal (msg.heartbeat_ms, HEARTBEAT_MS);
    sb_msg_reset (&msg);
    assert_int_equal (fake_broker_wait_heartbeats (s_broker, 3, 10 * HEARTBEAT_MS), 0);
}

static void
test_ping (void **state)
{
    sb_status_t status;
    json_t *result = s_call ("ping-1", 2000, 0, "ping", NULL, NULL, &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "pong")));
    assert_string_equal (json_string_value (json_object_get (result, "role")), "api");
    json_decref (result);
}

static void
test_tools_call (void **state)
{
    fake_upstream_reset (s_up);
    sb_status_t status;
    json_t *result = s_call ("call-1", 5000, SB_FLAG_RETRY_SAFE, "tools/call",
                             "get_account", "{\"id\":\"acc_0042\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_non_null (s_text_of (result));
    json_t *structured = json_object_get (result, "structuredContent");
    assert_non_null (structured);
    char *dump = json_dumps (structured, JSON_COMPACT);
    assert_non_null (strstr (dump, "acc_0042"));
    free (dump);
    json_decref (result);

    char auth [256];
    fake_upstream_last_auth (s_up, auth, sizeof auth);
    assert_string_equal (auth, "Bearer test-token");

    //  A list tool, and an upstream 404 that becomes a sentence, not a failure
    result = s_call ("call-2", 5000, SB_FLAG_RETRY_SAFE, "tools/call",
                     "search_accounts", "{\"query\":\"acme\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_false (json_is_true (json_object_get (result, "isError")));
    json_decref (result);
    result = s_call ("call-3", 5000, SB_FLAG_RETRY_SAFE, "tools/call",
                     "get_account", "{\"id\":\"acc_missing\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_decref (result);

    //  Keep-alive: three calls in sequence used one upstream connection
    assert_int_equal (fake_upstream_requests (s_up), 3);
    assert_int_equal (fake_upstream_connections (s_up), 1);
}

static void
test_concurrent_jobs (void **state)
{
    fake_upstream_reset (s_up);
    const int delay = 600;
    fake_upstream_set_delay (s_up, delay);
    int64_t start = s_now_ms ();
    for (int i = 0; i < CREDIT; i++) {
        char corr_id [32], args [64];
        snprintf (corr_id, sizeof corr_id, "many-%d", i);
        snprintf (args, sizeof args, "{\"id\":\"acc_%04d\"}", i);
        assert_int_equal (fake_broker_send_op (s_broker, corr_id, 10000, SB_FLAG_RETRY_SAFE,
                                               "tools/call", "get_account", args), 0);
    }
    bool seen [CREDIT] = { false };
    for (int i = 0; i < CREDIT; i++) {
        sb_msg_t msg = { 0 };
        assert_int_equal (fake_broker_recv (s_broker, &msg, 10000), 0);
        assert_int_equal (msg.command, SB_CMD_RESULT);
        assert_int_equal (msg.status, SB_STATUS_OK);
        int index = -1;
        assert_int_equal (sscanf (msg.corr_id, "many-%d", &index), 1);
        assert_true (index >= 0 && index < CREDIT && !seen [index]);
        seen [index] = true;
        sb_msg_reset (&msg);
    }
    int64_t elapsed = s_now_ms () - start;
    fake_upstream_set_delay (s_up, 0);
    //  Held at once: about one delay, far from CREDIT delays
    assert_int_equal (fake_upstream_max_inflight (s_up), CREDIT);
    assert_true (elapsed < 3 * delay);
}

static void
test_deadline_no_result (void **state)
{
    fake_upstream_reset (s_up);
    fake_upstream_set_delay (s_up, 1500);
    assert_int_equal (fake_broker_send_op (s_broker, "late-1", 300, SB_FLAG_RETRY_SAFE,
                                           "tools/call", "get_account", "{\"id\":\"acc_0001\"}"), 0);
    sb_msg_t msg = { 0 };
    //  Nothing may come back for the abandoned job, not even after the upstream answers
    int rc = fake_broker_recv (s_broker, &msg, 2500);
    if (rc == 0)
        fail_msg ("unexpected %s for %s", sb_cmd_name (msg.command), msg.corr_id);
    fake_upstream_set_delay (s_up, 0);
    sb_status_t status;
    json_t *result = s_call ("after-late", 2000, 0, "ping", NULL, NULL, &status);
    assert_int_equal (status, SB_STATUS_OK);
    json_decref (result);
    assert_true (sb_harness_alive (s_worker));
}

static void
test_retry_503 (void **state)
{
    fake_upstream_reset (s_up);
    fake_upstream_fail_next (s_up, 2, 0);
    sb_status_t status;
    json_t *result = s_call ("retry-1", 5000, SB_FLAG_RETRY_SAFE, "tools/call",
                             "get_account", "{\"id\":\"acc_0007\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_false (json_is_true (json_object_get (result, "isError")));
    json_decref (result);
    assert_int_equal (fake_upstream_requests (s_up), 3);

    //  Retry-After longer than the time left: no retry, a clear error at once
    fake_upstream_reset (s_up);
    fake_upstream_fail_next (s_up, 5, 30);
    int64_t start = s_now_ms ();
    result = s_call ("retry-2", 3000, SB_FLAG_RETRY_SAFE, "tools/call",
                     "get_account", "{\"id\":\"acc_0007\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_true (s_now_ms () - start < 2000);
    assert_int_equal (fake_upstream_requests (s_up), 1);
    json_decref (result);
    fake_upstream_fail_next (s_up, 0, -1);
}

static void
test_response_too_large (void **state)
{
    fake_upstream_reset (s_up);
    fake_upstream_set_padding (s_up, 3u << 20);      // the connector allows 1 MiB
    sb_status_t status;
    json_t *result = s_call ("big-1", 5000, SB_FLAG_RETRY_SAFE, "tools/call",
                             "get_account", "{\"id\":\"acc_0001\"}", &status);
    fake_upstream_set_padding (s_up, 0);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"), "error_type")),
                         "response_too_large");
    json_decref (result);
}

static void
test_bad_jobs (void **state)
{
    //  Undecodable payload
    zframe_t *garbage = zframe_new ("\xc1\xff\x00garbage", 10);
    assert_int_equal (fake_broker_send_job (s_broker, "bad-1", 2000, 0, &garbage), 0);
    sb_status_t status;
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, "bad-1", WAIT_MS, &status, &text), 0);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_non_null (strstr (text, "malformed job"));
    free (text);

    //  Empty payload
    assert_int_equal (fake_broker_send_job (s_broker, "bad-2", 2000, 0, NULL), 0);
    assert_int_equal (fake_broker_result (s_broker, "bad-2", WAIT_MS, &status, &text), 0);
    assert_int_equal (status, SB_STATUS_FAILED);
    free (text);

    //  Unknown op
    json_t *result = s_call ("bad-3", 2000, 0, "frobnicate", NULL, NULL, &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    assert_string_equal (json_string_value (json_object_get (result, "error")), "unknown op frobnicate");
    json_decref (result);

    //  Args that are not an object; a tool that does not exist; bad arguments
    result = s_call ("bad-4", 2000, 0, "tools/call", "get_account", "[1,2]", &status);
    assert_int_equal (status, SB_STATUS_FAILED);
    json_decref (result);
    result = s_call ("bad-5", 2000, 0, "tools/call", "no_such_tool", "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_decref (result);
    result = s_call ("bad-6", 2000, 0, "tools/call", "get_account", "{\"idx\":1}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    json_decref (result);

    //  Still alive and serving
    result = s_call ("bad-after", 2000, 0, "ping", NULL, NULL, &status);
    assert_int_equal (status, SB_STATUS_OK);
    json_decref (result);
    assert_true (sb_harness_alive (s_worker));
}

static void
s_restart_broker (bool disconnect_unknown)
{
    int port = s_broker->port;
    fake_broker_destroy (&s_broker);
    s_broker = fake_broker_new (port);
    assert_non_null (s_broker);
    s_broker->disconnect_unknown = disconnect_unknown;
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, 10000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    assert_string_equal (msg.service, "api");
    assert_int_equal (msg.credit, CREDIT);
    sb_msg_reset (&msg);
    sb_status_t status;
    json_t *result = s_call ("after-restart", 2000, 0, "ping", NULL, NULL, &status);
    assert_int_equal (status, SB_STATUS_OK);
    json_decref (result);
}

//  Builtin fixtures (tests/fixtures/connectors/conformance.json,
//  tests/fixtures/sb_fixture.c): the worker answers them itself, with the
//  content the conformance suite expects.
static void
test_builtin_fixtures (void **state)
{
    sb_status_t status;
    json_t *result = s_call ("fx-1", 3000, 0, "tools/call", "test_simple_text", "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_text_of (result), "This is a simple text response for testing.");
    json_decref (result);

    result = s_call ("fx-2", 3000, 0, "tools/call", "test_multiple_content_types", "{}", &status);
    json_t *content = json_object_get (result, "content");
    assert_int_equal (json_array_size (content), 3);
    assert_string_equal (json_string_value (json_object_get (json_array_get (content, 1), "mimeType")), "image/png");
    json_t *resource = json_object_get (json_array_get (content, 2), "resource");
    assert_string_equal (json_string_value (json_object_get (resource, "uri")), "test://mixed-content-resource");
    json_decref (result);

    static const char *const media [][2] = {
        { "test_image_content", "image" }, { "test_audio_content", "audio" },
        { "test_embedded_resource", "resource" },
    };
    for (size_t i = 0; i < 3; i++) {
        result = s_call (media [i][0], 3000, 0, "tools/call", media [i][0], "{}", &status);
        json_t *item = json_array_get (json_object_get (result, "content"), 0);
        assert_string_equal (json_string_value (json_object_get (item, "type")), media [i][1]);
        json_decref (result);
    }

    result = s_call ("fx-3", 3000, 0, "tools/call", "test_error_handling", "{}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_text_of (result), "This tool intentionally returns an error for testing");
    json_decref (result);

    result = s_call ("fx-4", 3000, 0, "tools/call", "json_schema_2020_12_tool",
                     "{\"name\":\"n\",\"email\":\"e\",\"address\":{\"city\":\"c\"}}", &status);
    assert_string_equal (s_text_of (result), "JSON Schema 2020-12 tool called with: "
                         "{\"name\":\"n\",\"email\":\"e\",\"address\":{\"city\":\"c\"}}");
    json_decref (result);

    //  Answered after a timer on the worker's loop.
    result = s_call ("fx-5", 3000, 0, "tools/call", "test_reconnection", "{}", &status);
    assert_non_null (strstr (s_text_of (result), "Reconnection test completed"));
    json_decref (result);

    //  Arguments are checked before a fixture runs.
    result = s_call ("fx-6", 3000, 0, "tools/call", "test_sampling", "{}", &status);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text_of (result), "prompt"));
    json_decref (result);
}

//  Sends create_task, waits for its confirmation ASK and checks the
//  question; returns the ask id. The upstream has not been called yet.
static uint32_t
s_expect_confirmation (const char *corr_id, uint32_t timeout_ms)
{
    int created = fake_upstream_tasks_created (s_up);
    assert_int_equal (fake_broker_send_op (s_broker, corr_id, timeout_ms, 0, "tools/call", "create_task",
                                           "{\"title\":\"Call back\",\"priority\":\"high\"}"), 0);
    uint32_t ask_id = 0;
    char *text = NULL;
    assert_int_equal (fake_broker_ask (s_broker, corr_id, WAIT_MS, &ask_id, &text), 0);
    assert_true (ask_id > 0);
    json_t *request = json_loads (text, 0, NULL);
    if (!request)
        fail_msg ("ASK is not JSON: %s", text);
    free (text);
    assert_string_equal (json_string_value (json_object_get (request, "method")), "elicitation/create");
    assert_null (json_object_get (request, "id"));          // the gateway numbers it
    json_t *params = json_object_get (request, "params");
    assert_string_equal (json_string_value (json_object_get (params, "mode")), "form");
    assert_string_equal (json_string_value (json_object_get (params, "message")),
                         "Run \"Create task\" in the CRM with title \"Call back\", priority \"high\"?");
    json_t *schema = json_object_get (params, "requestedSchema");
    assert_string_equal (json_string_value (json_object_get (schema, "type")), "object");
    assert_string_equal (json_string_value (json_object_get (json_object_get (
        json_object_get (schema, "properties"), "confirm"), "type")), "boolean");
    json_decref (request);
    assert_int_equal (fake_upstream_tasks_created (s_up), created);
    return ask_id;
}

//  Answers the confirmation and returns the call's result.
static json_t *
s_answer_confirmation (const char *corr_id, uint32_t ask_id, const char *response)
{
    assert_int_equal (fake_broker_answer (s_broker, corr_id, ask_id, response), 0);
    sb_status_t status;
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, corr_id, WAIT_MS, &status, &text), 0);
    assert_int_equal (status, SB_STATUS_OK);
    json_t *result = json_loads (text, 0, NULL);
    if (!result)
        fail_msg ("result is not JSON: %s", text);
    free (text);
    return result;
}

static const char *
s_confirmation_of (json_t *result)
{
    return json_string_value (json_object_get (json_object_get (result, "_meta"), "confirmation"));
}

static void
test_confirmation (void **state)
{
    fake_upstream_reset (s_up);

    //  accept + confirm true: the task is created, once
    uint32_t ask = s_expect_confirmation ("cf-accept", 5000);
    json_t *result = s_answer_confirmation ("cf-accept", ask,
        "{\"result\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}}");
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "structuredContent"),
                                                             "id")), "task_0001");
    assert_string_equal (s_confirmation_of (result), "accepted");
    json_decref (result);
    assert_int_equal (fake_upstream_tasks_created (s_up), 1);

    //  decline: nothing sent upstream; a plain sentence, not an error
    ask = s_expect_confirmation ("cf-decline", 5000);
    result = s_answer_confirmation ("cf-decline", ask, "{\"result\":{\"action\":\"decline\"}}");
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_text_of (result),
                         "Nothing was done: the user did not confirm \"Create task\" in the CRM.");
    assert_string_equal (s_confirmation_of (result), "declined");
    json_decref (result);

    //  accept without saying yes is no
    ask = s_expect_confirmation ("cf-no", 5000);
    result = s_answer_confirmation ("cf-no", ask,
        "{\"result\":{\"action\":\"accept\",\"content\":{\"confirm\":false}}}");
    assert_string_equal (s_confirmation_of (result), "declined");
    json_decref (result);

    //  cancel (dismissed)
    ask = s_expect_confirmation ("cf-cancel", 5000);
    result = s_answer_confirmation ("cf-cancel", ask, "{\"result\":{\"action\":\"cancel\"}}");
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text_of (result), "Nothing was done"));
    assert_string_equal (s_confirmation_of (result), "cancelled");
    json_decref (result);
    assert_int_equal (fake_upstream_tasks_created (s_up), 1);

    //  The gateway could not ask (client without elicitation): go ahead, say so
    ask = s_expect_confirmation ("cf-error", 5000);
    result = s_answer_confirmation ("cf-error", ask,
        "{\"error\":{\"code\":-32601,\"message\":\"the client cannot answer elicitation/create\"}}");
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_confirmation_of (result), "not_asked");
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"),
                         "confirmation_note")), "the client cannot answer elicitation/create");
    json_decref (result);
    assert_int_equal (fake_upstream_tasks_created (s_up), 2);

    //  No answer before the deadline: the job is abandoned, nothing comes
    //  back, nothing is created, and a late answer is ignored.
    ask = s_expect_confirmation ("cf-late", 300);
    sb_msg_t msg = { 0 };
    if (fake_broker_recv (s_broker, &msg, 800) == 0)
        fail_msg ("unexpected %s for %s", sb_cmd_name (msg.command), msg.corr_id);
    assert_int_equal (fake_broker_answer (s_broker, "cf-late", ask,
        "{\"result\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}}"), 0);
    sb_status_t status;
    result = s_call ("cf-after", 2000, 0, "ping", NULL, NULL, &status);
    assert_int_equal (status, SB_STATUS_OK);
    json_decref (result);
    assert_int_equal (fake_upstream_tasks_created (s_up), 2);
    assert_true (sb_harness_alive (s_worker));
}

static void
test_output_schema (void **state)
{
    fake_upstream_reset (s_up);
    fake_upstream_set_bad_output (s_up, true);
    sb_status_t status;
    json_t *result = s_call ("out-1", 5000, SB_FLAG_RETRY_SAFE, "tools/call",
                             "search_accounts", "{\"query\":\"acme\"}", &status);
    assert_int_equal (status, SB_STATUS_OK);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_null (json_object_get (result, "structuredContent"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "_meta"),
                                                             "error_type")), "output_mismatch");
    const char *text = s_text_of (result);
    assert_non_null (strstr (text, "The CRM answered, but the data does not match what the tool "
                                   "search_accounts promises"));
    assert_non_null (strstr (text, "Field 'items[0].name' must be a string."));
    json_decref (result);

    //  The same tool with a good answer passes the check.
    fake_upstream_set_bad_output (s_up, false);
    result = s_call ("out-2", 5000, SB_FLAG_RETRY_SAFE, "tools/call",
                     "search_accounts", "{\"query\":\"acme\"}", &status);
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_non_null (json_object_get (result, "structuredContent"));
    json_decref (result);
}

static void
test_broker_restart (void **state)
{
    //  A silent new broker: the worker notices the silence and registers again
    s_restart_broker (false);
    //  A new broker that answers unknown workers with DISCONNECT
    s_restart_broker (true);
}

static void
test_sigterm_drains (void **state)
{
    fake_upstream_reset (s_up);
    fake_upstream_set_delay (s_up, 500);
    assert_int_equal (fake_broker_send_op (s_broker, "drain-1", 5000, SB_FLAG_RETRY_SAFE,
                                           "tools/call", "get_account", "{\"id\":\"acc_0003\"}"), 0);
    //  The request is at the upstream once it counts it
    int64_t deadline = s_now_ms () + WAIT_MS;
    while (fake_upstream_requests (s_up) < 1 && s_now_ms () < deadline) {
        sb_msg_t msg = { 0 };
        if (fake_broker_recv (s_broker, &msg, 10) == 0)
            fail_msg ("unexpected %s", sb_cmd_name (msg.command));
    }
    assert_int_equal (fake_upstream_requests (s_up), 1);
    kill (s_worker, SIGTERM);
    sb_status_t status;
    char *text = NULL;
    assert_int_equal (fake_broker_result (s_broker, "drain-1", WAIT_MS, &status, &text), 0);
    assert_int_equal (status, SB_STATUS_OK);
    free (text);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
    assert_int_equal (msg.command, SB_CMD_DISCONNECT);
    sb_msg_reset (&msg);
    int wstatus = sb_harness_stop (s_worker);
    s_worker = -1;
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 0);
}

//  ---------------------------------------------------------------------
//  The tasks extension

#define PROMOTE_JSON    "{\"jsonrpc\":\"2.0\",\"method\":\"switchboard/promote\"}"

//  Sends tools/call `tool` of `connector` (fake_broker_send_op guesses the
//  connector from the tool's name; these tools need it said).
static void
s_send_tool (fake_broker_t *broker, const char *corr_id, uint32_t timeout_ms,
             const char *connector, const char *tool, const char *args)
{
    sb_job_t job = { .op = "tools/call", .connector = sb_unconst (connector), .tool = sb_unconst (tool),
                     .args = sb_unconst (args) };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    assert_int_equal (fake_broker_send_job (broker, corr_id, timeout_ms, 0, &payload), 0);
}

//  The next message from `broker` must be the promote NOTIFY of `corr_id`.
static void
s_expect_promote (fake_broker_t *broker, const char *corr_id)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (broker, &msg, WAIT_MS), 0);
    if (msg.command != SB_CMD_NOTIFY || strcmp (msg.corr_id, corr_id) != 0 || !msg.payload)
        fail_msg ("expected the promote NOTIFY of %s, got %s %s", corr_id,
                  sb_cmd_name (msg.command), msg.corr_id);
    sb_job_result_t note = { 0 };
    assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload), &note), 0);
    assert_string_equal (note.result, PROMOTE_JSON);
    sb_job_result_clear (&note);
    sb_msg_reset (&msg);
}

//  Waits for the ASK of `corr_id` and returns its id; the request names `text`.
static uint32_t
s_expect_ask (const char *corr_id, const char *text)
{
    uint32_t ask_id = 0;
    char *request = NULL;
    assert_int_equal (fake_broker_ask (s_broker, corr_id, WAIT_MS, &ask_id, &request), 0);
    if (!strstr (request, text))
        fail_msg ("ASK of %s lacks \"%s\": %s", corr_id, text, request);
    free (request);
    return ask_id;
}

//  Older revisions (no inputs): greet answers with no promote; the asking
//  fixtures promote first, then ask by ASK, then answer.
static void
test_task_fixtures_by_ask (void **state)
{
    sb_status_t status;
    char *text = NULL;
    s_send_tool (s_broker, "tf-greet", 3000, "conformance", "greet", "{\"name\":\"World\"}");
    assert_int_equal (fake_broker_result (s_broker, "tf-greet", WAIT_MS, &status, &text), 0);
    json_t *result = json_loads (text, 0, NULL);
    free (text);
    assert_int_equal (status, SB_STATUS_OK);
    assert_string_equal (s_text_of (result), "Hello, World!");
    json_decref (result);

    s_send_tool (s_broker, "tf-cd", 5000, "conformance", "confirm_delete", "{\"filename\":\"notes.txt\"}");
    s_expect_promote (s_broker, "tf-cd");
    uint32_t ask = s_expect_ask ("tf-cd", "Delete notes.txt?");
    assert_int_equal (fake_broker_answer (s_broker, "tf-cd", ask,
        "{\"result\":{\"action\":\"accept\",\"content\":{\"confirm\":true}}}"), 0);
    assert_int_equal (fake_broker_result (s_broker, "tf-cd", WAIT_MS, &status, &text), 0);
    result = json_loads (text, 0, NULL);
    free (text);
    assert_string_equal (s_text_of (result), "Deleted notes.txt");
    json_decref (result);

    //  Two questions out at once; answered in the other order.
    s_send_tool (s_broker, "tf-mi", 5000, "conformance", "multi_input", "{}");
    s_expect_promote (s_broker, "tf-mi");
    uint32_t first = s_expect_ask ("tf-mi", "What is your name?");
    uint32_t second = s_expect_ask ("tf-mi", "Whom shall I greet with you?");
    assert_int_not_equal (first, second);
    assert_int_equal (fake_broker_answer (s_broker, "tf-mi", second,
        "{\"result\":{\"action\":\"accept\",\"content\":{\"name\":\"Bea\"}}}"), 0);
    assert_int_equal (fake_broker_answer (s_broker, "tf-mi", first,
        "{\"result\":{\"action\":\"accept\",\"content\":{\"name\":\"Ada\"}}}"), 0);
    assert_int_equal (fake_broker_result (s_broker, "tf-mi", WAIT_MS, &status, &text), 0);
    result = json_loads (text, 0, NULL);
    free (text);
    assert_string_equal (s_text_of (result), "Hello, Ada and Bea!");
    json_decref (result);
}

//  A connector of account tools that may, must or must not become tasks.
#define S_ACCOUNT_TOOL(name, support) \
    "{\"name\":\"" name "\",\"description\":\"d\"," support \
    "\"annotations\":{\"readOnlyHint\":true}," \
    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}},\"required\":[\"id\"]}," \
    "\"request\":{\"method\":\"GET\",\"path\":\"/v1/accounts/{id}\"}," \
    "\"result\":{\"mapping\":\"object\",\"noun\":\"account\"}}"
static const char s_task_connector [] =
    "{\"name\":\"slowcrm\",\"title\":\"Slow CRM\",\"base_url\":\"http://127.0.0.1:1\","
    "\"auth\":{\"type\":\"bearer\",\"credential\":\"shared\",\"token_env\":\"SB_SANDBOX_CRM_TOKEN\"},\"tools\":["
    S_ACCOUNT_TOOL ("account_maybe_task", "\"taskSupport\":\"optional\",") ","
    S_ACCOUNT_TOOL ("account_task", "\"taskSupport\":\"required\",") ","
    S_ACCOUNT_TOOL ("account_never_task", "") "]}";

#define PROMOTE_MS      150     /* the second worker's --task-promote-ms */
#define SLOW_MS         700     /* the upstream's delay while it should promote */

//  Sends `tool` to `broker`; returns the result's status after checking
//  whether a promote NOTIFY came first (and when).
static sb_status_t
s_promote_call (fake_broker_t *broker, const char *corr_id, const char *tool, bool promote)
{
    int64_t sent = s_now_ms ();
    s_send_tool (broker, corr_id, 10000, "slowcrm", tool, "{\"id\":\"acc_0042\"}");
    if (promote) {
        s_expect_promote (broker, corr_id);
        int64_t after = s_now_ms () - sent;
        if (after < PROMOTE_MS - 10 || after >= SLOW_MS)
            fail_msg ("%s promoted after %lld ms, not after about %d", corr_id, (long long) after,
                      PROMOTE_MS);
    }
    sb_status_t status;
    char *text = NULL;
    assert_int_equal (fake_broker_result (broker, corr_id, WAIT_MS, &status, &text), 0);
    assert_non_null (strstr (text, "acc_0042"));
    free (text);
    return status;
}

static void
test_task_promote (void **state)
{
    char dir [] = "/tmp/sb-promote-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char file [128];
    snprintf (file, sizeof file, "%s/slowcrm.json", dir);
    FILE *out = fopen (file, "w");
    assert_non_null (out);
    fputs (s_task_connector, out);
    fclose (out);

    //  Out of range: refused at start-up.
    const char *bad [] = { sb_harness_bin ("sb-worker"), "--role", "api", "--connectors", dir,
                           "--task-promote-ms", "0", NULL };
    pid_t pid = sb_harness_spawn (bad, NULL);
    int wstatus = 0;
    assert_int_equal (waitpid (pid, &wstatus, 0), pid);
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 2);

    fake_broker_t *broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (broker);
    char urls [128], promote [16];
    snprintf (urls, sizeof urls, "slowcrm=%s", fake_upstream_url (s_up));
    snprintf (promote, sizeof promote, "%d", PROMOTE_MS);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "api", "--broker", broker->endpoint,
        "--credit", "4", "--heartbeat-ms", "200", "--connectors", dir,
        "--connector-urls", urls, "--task-promote-ms", promote, "--log-level", "info", NULL
    };
    const char *env [] = { "SB_SANDBOX_CRM_TOKEN=test-token", NULL };
    pid_t worker = sb_harness_spawn (argv, env);
    assert_true (worker > 0);
    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (broker, &msg, 10000), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    sb_msg_reset (&msg);

    //  Slow upstream: the tools that may become tasks promote once, after
    //  --task-promote-ms, and still answer; the other one never promotes.
    fake_upstream_set_delay (s_up, SLOW_MS);
    assert_int_equal (s_promote_call (broker, "tp-maybe", "account_maybe_task", true), SB_STATUS_OK);
    assert_int_equal (s_promote_call (broker, "tp-must", "account_task", true), SB_STATUS_OK);
    assert_int_equal (s_promote_call (broker, "tp-never", "account_never_task", false), SB_STATUS_OK);

    //  Fast upstream: answered before the time is up, no promote, then or later.
    fake_upstream_set_delay (s_up, 0);
    assert_int_equal (s_promote_call (broker, "tp-fast", "account_maybe_task", false), SB_STATUS_OK);
    if (fake_broker_recv (broker, &msg, 2 * PROMOTE_MS) == 0)
        fail_msg ("unexpected %s for %s", sb_cmd_name (msg.command), msg.corr_id);

    //  A job that ends at its deadline while promoted: nothing more is sent.
    fake_upstream_set_delay (s_up, SLOW_MS);
    s_send_tool (broker, "tp-late", 400, "slowcrm", "account_maybe_task", "{\"id\":\"acc_0042\"}");
    s_expect_promote (broker, "tp-late");
    if (fake_broker_recv (broker, &msg, SLOW_MS) == 0)
        fail_msg ("unexpected %s for %s", sb_cmd_name (msg.command), msg.corr_id);
    fake_upstream_set_delay (s_up, 0);

    assert_int_equal (sb_harness_stop (worker), 0);
    fake_broker_destroy (&broker);
    unlink (file);
    rmdir (dir);
}

//  The product's sb-worker holds no fixture code: given the fixture
//  connectors (SB_TEST_CONNECTORS) it refuses them at start-up, exit 1,
//  with connectors_invalid naming a tool and the builtin it lacks.
static void
test_product_worker_refuses_fixtures (void **state)
{
    char log [64];
    snprintf (log, sizeof log, "/tmp/sb-38-api-refuse-%d.log", (int) getpid ());
    const char *argv [] = { sb_harness_bin ("sb-worker"), "--role", "api",
                            "--broker", "tcp://127.0.0.1:9", "--connectors", SB_TEST_CONNECTORS,
                            NULL };
    //  Its stderr (the log) goes to a file.
    pid_t pid = sb_harness_spawn_logged (argv, NULL, log);
    assert_true (pid > 0);
    //  It must end by itself; one that started (with fixtures) is stopped.
    int64_t deadline = s_now_ms () + WAIT_MS;
    while (sb_harness_alive (pid) && s_now_ms () < deadline)
        sb_harness_pause_ms (20);
    bool ended = !sb_harness_alive (pid);
    int wstatus = sb_harness_stop (pid);
    assert_true (ended);
    assert_true (WIFEXITED (wstatus));
    assert_int_equal (WEXITSTATUS (wstatus), 1);

    FILE *file = fopen (log, "r");
    assert_non_null (file);
    char line [4096];
    bool refused = false;
    while (!refused && fgets (line, sizeof line, file))
        refused = strstr (line, "\"connectors_invalid\"")
               && strstr (line, "this worker has no builtin \\\"test_simple_text\\\"");
    fclose (file);
    unlink (log);
    assert_true (refused);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ready_and_heartbeats),
        cmocka_unit_test (test_ping),
        cmocka_unit_test (test_tools_call),
        cmocka_unit_test (test_concurrent_jobs),
        cmocka_unit_test (test_deadline_no_result),
        cmocka_unit_test (test_retry_503),
        cmocka_unit_test (test_response_too_large),
        cmocka_unit_test (test_bad_jobs),
        cmocka_unit_test (test_builtin_fixtures),
        cmocka_unit_test (test_confirmation),
        cmocka_unit_test (test_output_schema),
        cmocka_unit_test (test_task_fixtures_by_ask),
        cmocka_unit_test (test_task_promote),
        cmocka_unit_test (test_product_worker_refuses_fixtures),
        cmocka_unit_test (test_broker_restart),
        cmocka_unit_test (test_sigterm_drains),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
