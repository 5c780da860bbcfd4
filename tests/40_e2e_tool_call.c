/*  tests/40_e2e_tool_call.c — the whole farm, end to end: an MCP client
    initialises, lists tools and calls them; each call travels gateway →
    broker → api worker → sandbox CRM → back. The token and webhook workers
    answer a ping through the real broker (the token worker through the
    real PostgreSQL). */
#include "sb_job.h"
#include "sb_msg.h"
#include "sb_farm.h"
#include "sb_harness.h"

#include <dirent.h>
#include <sched.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static sb_farm_t *s_farm;

static int
s_setup (void **state)
{
    s_farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1 });
    return s_farm ? 0 : -1;
}

static int
s_teardown (void **state)
{
    sb_farm_stop (&s_farm);
    return 0;
}

//  POSTs a JSON-RPC request and returns its parsed response (asserting 200).
static json_t *
s_rpc (const char *body)
{
    long status = 0;
    char *resp = NULL;
    assert_int_equal (sb_farm_mcp (s_farm, body, &status, &resp), 0);
    if (status != 200)
        fprintf (stderr, "HTTP %ld: %s\n", status, resp ? resp : "");
    assert_int_equal (status, 200);
    json_error_t error;
    json_t *json = json_loads (resp, 0, &error);
    if (!json)
        fprintf (stderr, "not JSON: %s\n", resp);
    assert_non_null (json);
    free (resp);
    return json;
}

static void
test_initialize (void **state)
{
    json_t *resp = s_rpc ("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
                          "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
                          "\"clientInfo\":{\"name\":\"e2e\",\"version\":\"1\"}}}");
    json_t *result = json_object_get (resp, "result");
    assert_non_null (result);
    assert_string_equal (json_string_value (json_object_get (result, "protocolVersion")), "2025-06-18");
    assert_non_null (json_object_get (json_object_get (result, "capabilities"), "tools"));
    assert_string_equal (json_string_value (json_object_get (
        json_object_get (result, "serverInfo"), "name")), "switchboard");
    assert_int_equal (json_integer_value (json_object_get (resp, "id")), 1);
    json_decref (resp);
}

static void
test_tools_list (void **state)
{
    json_t *resp = s_rpc ("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    json_t *tools = json_object_get (json_object_get (resp, "result"), "tools");
    assert_true (json_array_size (tools) >= 2);
    bool search = false, get = false;
    size_t i;
    json_t *tool;
    json_array_foreach (tools, i, tool) {
        const char *name = json_string_value (json_object_get (tool, "name"));
        assert_non_null (name);
        assert_non_null (json_object_get (tool, "inputSchema"));
        search |= strcmp (name, "search_accounts") == 0;
        get |= strcmp (name, "get_account") == 0;
    }
    assert_true (search);
    assert_true (get);
    json_decref (resp);
}

static void
test_search_then_get (void **state)
{
    json_t *resp = s_rpc ("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                          "{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"a\",\"limit\":5}}}");
    json_t *result = json_object_get (resp, "result");
    assert_non_null (result);
    assert_false (json_is_true (json_object_get (result, "isError")));
    json_t *content = json_object_get (result, "content");
    assert_true (json_array_size (content) >= 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (content, 0), "type")), "text");
    json_t *items = json_object_get (json_object_get (result, "structuredContent"), "items");
    assert_true (json_array_size (items) >= 1);
    assert_true (json_array_size (items) <= 5);
    json_t *first_id = json_object_get (json_array_get (items, 0), "id");
    assert_true (json_is_string (first_id));
    char *id = strdup (json_string_value (first_id));
    json_decref (resp);

    json_t *args = json_pack ("{s:s}", "id", id);
    json_t *request = json_pack ("{s:s,s:i,s:s,s:{s:s,s:o}}", "jsonrpc", "2.0", "id", 4,
                                 "method", "tools/call", "params", "name", "get_account",
                                 "arguments", args);
    char *text = json_dumps (request, JSON_COMPACT);
    resp = s_rpc (text);
    result = json_object_get (resp, "result");
    assert_false (json_is_true (json_object_get (result, "isError")));
    json_t *account = json_object_get (result, "structuredContent");
    assert_string_equal (json_string_value (json_object_get (account, "id")), id);
    free (text);
    free (id);
    json_decref (request);
    json_decref (resp);
}

static void
test_unknown_id_is_a_clear_error (void **state)
{
    json_t *resp = s_rpc ("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":"
                          "{\"name\":\"get_account\",\"arguments\":{\"id\":\"no-such-account\"}}}");
    json_t *result = json_object_get (resp, "result");
    assert_true (json_is_true (json_object_get (result, "isError")));
    const char *text = json_string_value (json_object_get (
        json_array_get (json_object_get (result, "content"), 0), "text"));
    assert_non_null (text);
    assert_true (strlen (text) > 10);       //  a sentence, not a code
    json_decref (resp);
}

static void
test_no_token_is_refused (void **state)
{
    char url [128];
    snprintf (url, sizeof url, "%s/mcp", s_farm->gateway_url);
    const char *headers [] = { "Content-Type: application/json", NULL };
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}";
    long status = 0;
    assert_int_equal (sb_harness_http ("POST", url, headers, body, strlen (body), 5000,
                                       &status, NULL), 0);
    assert_int_equal (status, 401);
}

//  Acts as a second gateway: sends a ping job for `service` to the broker.
static json_t *
s_ping (const char *service)
{
    char endpoint [80];
    snprintf (endpoint, sizeof endpoint, ">%s", s_farm->frontend);
    zsock_t *dealer = zsock_new_dealer (endpoint);
    assert_non_null (dealer);
    sb_job_t job = { .op = "ping" };
    zframe_t *payload = sb_job_encode (&job);
    sb_msg_t msg = { 0 };
    char corr_id [33];
    sb_msg_new_corr_id (corr_id);
    assert_int_equal (sb_msg_set_request (&msg, corr_id, service, "demo", 10000, 0, &payload), 0);
    assert_int_equal (sb_msg_send (dealer, &msg, NULL), 0);

    zpoller_t *poller = zpoller_new (dealer, NULL);
    assert_ptr_equal (zpoller_wait (poller, 12000), dealer);
    assert_int_equal (sb_msg_recv (dealer, &msg, NULL), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_string_equal (msg.corr_id, corr_id);
    if (msg.status != SB_STATUS_OK)
        fprintf (stderr, "%s ping: %s\n", service, sb_status_name (msg.status));
    assert_int_equal (msg.status, SB_STATUS_OK);
    sb_job_result_t result = { 0 };
    assert_int_equal (sb_job_result_decode (zframe_data (msg.payload), zframe_size (msg.payload),
                                            &result), 0);
    json_t *json = json_loads (result.result, 0, NULL);
    assert_non_null (json);
    sb_job_result_clear (&result);
    sb_msg_reset (&msg);
    zpoller_destroy (&poller);
    zsock_destroy (&dealer);
    return json;
}

static void
test_every_worker_kind_answers (void **state)
{
    json_t *pong = s_ping ("api");
    assert_true (json_is_true (json_object_get (pong, "pong")));
    json_decref (pong);

    pong = s_ping ("webhook");
    assert_true (json_is_true (json_object_get (pong, "pong")));
    json_decref (pong);

    pong = s_ping ("token");        //  through PostgreSQL: migrations were applied
    assert_true (json_is_true (json_object_get (pong, "pong")));
    assert_string_equal (json_string_value (json_object_get (pong, "db")), "ok");
    assert_true (json_integer_value (json_object_get (pong, "migrations")) >= 1);
    json_decref (pong);
}

//  Every farm process runs SCHED_BATCH (--cpu-policy's default), and so
//  do the threads it started (ZeroMQ's I/O thread among them).
static void
test_processes_run_batch (void **state)
{
    pid_t pids [] = { s_farm->gateway, s_farm->broker, s_farm->api_workers [0], s_farm->token_worker,
                      s_farm->task_worker, s_farm->webhook_worker, s_farm->sandbox };
    for (size_t i = 0; i < sizeof pids / sizeof pids [0]; i++) {
        char path [64];
        snprintf (path, sizeof path, "/proc/%d/task", (int) pids [i]);
        DIR *tasks = opendir (path);
        assert_non_null (tasks);
        int threads = 0;
        for (struct dirent *entry; (entry = readdir (tasks));) {
            if (entry->d_name [0] == '.')
                continue;
            int policy = sched_getscheduler ((pid_t) atoi (entry->d_name));
            if (policy != SCHED_BATCH)
                fail_msg ("pid %d thread %s runs policy %d, not SCHED_BATCH", (int) pids [i],
                          entry->d_name, policy);
            threads++;
        }
        closedir (tasks);
        assert_true (threads >= 1);
    }
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_initialize),
        cmocka_unit_test (test_tools_list),
        cmocka_unit_test (test_search_then_get),
        cmocka_unit_test (test_unknown_id_is_a_clear_error),
        cmocka_unit_test (test_no_token_is_refused),
        cmocka_unit_test (test_every_worker_kind_answers),
        cmocka_unit_test (test_processes_run_batch),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
