/*  tests/38_workers_cancel.c — CANCEL reaches a real api worker (sb-worker
    --role api) while its upstream call is still in progress: the transfer
    is abandoned at once, the broker gets RESULT `cancelled` long before the
    upstream would have answered, and the worker keeps serving. */
#include "38_workers_fake.h"
#include "sb_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <time.h>

#define WAIT_MS       5000      /* longest wait for something that must happen */
#define UPSTREAM_MS   8000      /* the slow upstream's delay */

static fake_upstream_t *s_up;
static fake_broker_t *s_broker;
static pid_t s_worker = -1;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
s_setup (void **state)
{
    zsys_handler_set (NULL);
    s_up = fake_upstream_new ();
    s_broker = fake_broker_new (sb_harness_free_port ());
    assert_non_null (s_up);
    assert_non_null (s_broker);
    char urls [128], connectors [512];
    snprintf (urls, sizeof urls, "sandbox-crm=%s", fake_upstream_url (s_up));
    snprintf (connectors, sizeof connectors, "%s/connectors", SB_SOURCE_DIR);
    const char *argv [] = {
        sb_harness_bin ("sb-worker"), "--role", "api", "--broker", s_broker->endpoint,
        "--credit", "4", "--heartbeat-ms", "500", "--connectors", connectors,
        "--connector-urls", urls, NULL
    };
    const char *env [] = { "SB_SANDBOX_CRM_TOKEN=test-token", NULL };
    s_worker = sb_harness_spawn (argv, env);
    assert_true (s_worker > 0);

    sb_msg_t msg = { 0 };
    assert_int_equal (fake_broker_recv (s_broker, &msg, WAIT_MS), 0);
    assert_int_equal (msg.command, SB_CMD_READY);
    sb_msg_reset (&msg);
    return 0;
}

static int
s_teardown (void **state)
{
    if (s_worker > 0)
        assert_int_equal (sb_harness_stop (s_worker), 0);
    fake_broker_destroy (&s_broker);
    fake_upstream_destroy (&s_up);
    return 0;
}

static void
test_cancel_mid_upstream_call (void **state)
{
    fake_upstream_set_delay (s_up, UPSTREAM_MS);
    assert_int_equal (fake_broker_send_op (s_broker, "slow-1", 30000, 0, "tools/call",
                                           "search_accounts", "{\"query\":\"acme\"}"), 0);
    //  Act once the request is really at the upstream.
    int64_t deadline = s_now_ms () + WAIT_MS;
    while (fake_upstream_requests (s_up) < 1 && s_now_ms () < deadline) {
        struct timespec pause = { 0, 10 * 1000000 };
        nanosleep (&pause, NULL);   //  polling a counter, not synchronising by time
    }
    assert_int_equal (fake_upstream_requests (s_up), 1);

    int64_t sent_at = s_now_ms ();
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_cancel (&msg, "slow-1"), 0);
    assert_int_equal (sb_msg_send (s_broker->router, &msg, s_broker->worker), 0);

    sb_status_t status;
    char *json = NULL;
    assert_int_equal (fake_broker_result (s_broker, "slow-1", WAIT_MS, &status, &json), 0);
    assert_int_equal (status, SB_STATUS_CANCELLED);
    assert_true (s_now_ms () - sent_at < UPSTREAM_MS / 2);   //  did not wait for the upstream
    free (json);

    //  A cancel for a job it does not hold changes nothing; it keeps serving.
    assert_int_equal (sb_msg_set_cancel (&msg, "never-was"), 0);
    assert_int_equal (sb_msg_send (s_broker->router, &msg, s_broker->worker), 0);
    fake_upstream_set_delay (s_up, 0);
    assert_int_equal (fake_broker_send_op (s_broker, "after-1", 10000, 0, "tools/call",
                                           "search_accounts", "{\"query\":\"acme\"}"), 0);
    assert_int_equal (fake_broker_result (s_broker, "after-1", WAIT_MS, &status, &json), 0);
    assert_int_equal (status, SB_STATUS_OK);
    assert_non_null (strstr (json, "structuredContent"));
    free (json);
    assert_true (sb_harness_alive (s_worker));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_cancel_mid_upstream_call),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
