/*  tests/41_e2e_faults.c — failure is normal: a worker killed with SIGKILL
    mid-job, a second worker joining, a deadline passing, the last api
    worker gone (answered `unavailable` long before the deadline, served
    again once a worker is back). Each has a defined outcome through the
    real farm, and nothing hangs.

    The sandbox's fault API makes upstream calls slow on demand, and its
    stats say how many requests it is holding back right now ("delayed_now"), so the test
    acts at the moment a job is really inside a worker — no sleeps. */
#include "sb_job.h"
#include "sb_msg.h"
#include "sb_farm.h"
#include "sb_harness.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define S_SEARCH "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":" \
                 "{\"name\":\"search_accounts\",\"arguments\":{\"query\":\"a\"}}}"
#define S_CREATE "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":" \
                 "{\"name\":\"create_task\",\"arguments\":{\"title\":\"Call back\"}}}"

//  Finishes an async call and returns its CallToolResult (asserting HTTP 200).
static json_t *
s_finish (sb_farm_call_t *call, int timeout_ms)
{
    long status = 0;
    char *resp = NULL;
    assert_int_equal (sb_farm_call_finish (call, timeout_ms, &status, &resp), 0);
    if (status != 200)
        fprintf (stderr, "HTTP %ld: %s\n", status, resp);
    assert_int_equal (status, 200);
    json_t *json = json_loads (resp, 0, NULL);
    assert_non_null (json);
    free (resp);
    json_t *result = json_incref (json_object_get (json, "result"));
    assert_non_null (result);
    json_decref (json);
    return result;
}

static const char *
s_error_type (json_t *result)
{
    return json_string_value (json_object_get (json_object_get (result, "_meta"), "error_type"));
}

static void
test_killed_worker_not_retry_safe (void **state)
{
    sb_farm_t *farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1, .no_token_worker = true });
    sb_farm_sandbox_faults (farm, "{\"delay_ms\":20000,\"count\":1,\"path_prefix\":\"/v1/tasks\"}");
    sb_farm_call_t call = sb_farm_call_start (farm, S_CREATE);
    assert_int_equal (sb_farm_sandbox_wait (farm, "delayed_now", 1, 10000), 0);
    sb_harness_kill (farm->api_workers [0]);
    farm->api_workers [0] = -1;

    //  Well before the 20 s upstream delay: heartbeat expiry (3 × 500 ms).
    json_t *result = s_finish (&call, 8000);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_error_type (result), "worker_lost");
    json_decref (result);
    assert_true (sb_harness_alive (farm->broker));
    assert_true (sb_harness_alive (farm->gateway));
    sb_farm_stop (&farm);
}

static void
test_killed_worker_retry_safe (void **state)
{
    sb_farm_t *farm = sb_farm_start (&(sb_farm_opts_t) { .api_workers = 1, .no_token_worker = true });
    sb_farm_sandbox_faults (farm, "{\"delay_ms\":20000,\"count\":1,\"path_prefix\":\"/v1/accounts\"}");
    sb_farm_call_t call = sb_farm_call_start (farm, S_SEARCH);
    assert_int_equal (sb_farm_sandbox_wait (farm, "delayed_now", 1, 10000), 0);
    pid_t first = farm->api_workers [0];
    sb_farm_add_api_worker (farm);
    sb_harness_kill (first);
    farm->api_workers [0] = -1;

    //  The search is read-only, so the broker runs it again on the new
    //  worker; the one-shot delay is spent, so it answers at once.
    json_t *result = s_finish (&call, 8000);
    assert_false (json_is_true (json_object_get (result, "isError")));
    assert_non_null (json_object_get (json_object_get (result, "structuredContent"), "items"));
    json_decref (result);
    sb_farm_stop (&farm);
}

static void
test_second_worker_takes_load (void **state)
{
    //  Credit 1 each: two upstream requests held at once prove two workers.
    sb_farm_t *farm = sb_farm_start (&(sb_farm_opts_t) {
        .api_workers = 1, .api_credit = 1, .no_token_worker = true });
    sb_farm_add_api_worker (farm);
    sb_farm_sandbox_faults (farm, "{\"delay_ms\":3000,\"count\":2,\"path_prefix\":\"/v1/accounts\"}");
    sb_farm_call_t a = sb_farm_call_start (farm, S_SEARCH);
    sb_farm_call_t b = sb_farm_call_start (farm, S_SEARCH);
    assert_int_equal (sb_farm_sandbox_wait (farm, "delayed_now", 2, 10000), 0);
    json_t *ra = s_finish (&a, 10000);
    json_t *rb = s_finish (&b, 10000);
    assert_false (json_is_true (json_object_get (ra, "isError")));
    assert_false (json_is_true (json_object_get (rb, "isError")));
    json_decref (ra);
    json_decref (rb);
    sb_farm_stop (&farm);
}

static void
test_deadline_gives_timeout_once (void **state)
{
    sb_farm_t *farm = sb_farm_start (&(sb_farm_opts_t) {
        .api_workers = 1, .call_timeout_ms = 1000, .no_token_worker = true });
    sb_farm_sandbox_faults (farm, "{\"delay_ms\":2500,\"count\":2,\"path_prefix\":\"/v1/accounts\"}");

    //  Through the gateway: a timeout result a person can read.
    sb_farm_call_t call = sb_farm_call_start (farm, S_SEARCH);
    json_t *result = s_finish (&call, 6000);
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_error_type (result), "timeout");
    json_decref (result);

    //  Straight to the broker, as a gateway: exactly one REPLY, even after
    //  the upstream has answered the worker.
    char endpoint [80];
    snprintf (endpoint, sizeof endpoint, ">%s", farm->frontend);
    zsock_t *dealer = zsock_new_dealer (endpoint);
    sb_job_t job = { .op = "tools/call", .connector = "sandbox-crm",
                     .tool = "search_accounts", .args = "{\"query\":\"a\"}" };
    zframe_t *payload = sb_job_encode (&job);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, "late-1", "api", "demo", 800, 0, &payload), 0);
    assert_int_equal (sb_msg_send (dealer, &msg, NULL), 0);
    zpoller_t *poller = zpoller_new (dealer, NULL);
    assert_ptr_equal (zpoller_wait (poller, 5000), dealer);
    assert_int_equal (sb_msg_recv (dealer, &msg, NULL), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "late-1");
    assert_int_equal (msg.status, SB_STATUS_TIMEOUT);
    //  The upstream would answer at 2.5 s: nothing more may arrive for
    //  this correlation ID in the 3 s after the timeout reply.
    assert_null (zpoller_wait (poller, 3000));
    sb_msg_reset (&msg);
    zpoller_destroy (&poller);
    zsock_destroy (&dealer);
    sb_farm_stop (&farm);
}

//  The only api worker is killed: a tool call is answered `unavailable`
//  once the broker has expired it and its no-worker grace has passed —
//  seconds, not the call's 30 s deadline. A new worker serves again.
static void
test_no_api_worker_unavailable (void **state)
{
    sb_farm_t *farm = sb_farm_start (&(sb_farm_opts_t) {
        .api_workers = 1, .call_timeout_ms = 30000, .no_token_worker = true });
    sb_harness_kill (farm->api_workers [0]);
    farm->api_workers [0] = -1;

    int64_t start = sb_harness_now_ms ();
    sb_farm_call_t call = sb_farm_call_start (farm, S_SEARCH);
    json_t *result = s_finish (&call, 30000 + 5000);
    int64_t took = sb_harness_now_ms () - start;
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (s_error_type (result), "unavailable");
    assert_true (json_integer_value (json_object_get (json_object_get (result, "_meta"),
                                                      "retry_after")) > 0);
    assert_true (took < 30000 / 4);
    json_decref (result);

    sb_farm_add_api_worker (farm);
    int64_t deadline = sb_harness_now_ms () + 15000;
    bool served = false;
    while (!served && sb_harness_now_ms () < deadline) {
        call = sb_farm_call_start (farm, S_SEARCH);
        result = s_finish (&call, 30000 + 5000);
        served = !json_is_true (json_object_get (result, "isError"));
        if (!served) {
            //  Until the new worker's READY: still `unavailable`, at once
            assert_string_equal (s_error_type (result), "unavailable");
            sb_harness_pause_ms (100);
        }
        json_decref (result);
    }
    assert_true (served);
    sb_farm_stop (&farm);
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_killed_worker_not_retry_safe),
        cmocka_unit_test (test_killed_worker_retry_safe),
        cmocka_unit_test (test_second_worker_takes_load),
        cmocka_unit_test (test_deadline_gives_timeout_once),
        cmocka_unit_test (test_no_api_worker_unavailable),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
