/*  tests/20_broker_unavailable.c — a service with no worker (PROTOCOL.md,
    "No worker"): after the no-worker grace a REQUEST is answered
    `unavailable` at once, with a retry_after; jobs already waiting when
    the last worker leaves are answered `unavailable` when the grace ends,
    long before their deadline; a worker back within the grace takes them;
    a worker that is merely busy is not "no worker". And the broker answers
    a gateway's HEARTBEAT, which is how a gateway tells a live broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"
#include "sb_clock.h"
#include "sb_log.h"

#define T_DEADLINE_MS   20000   /* every job's deadline: far beyond any answer here */

//  Receives the REPLY for `corr_id` and checks that it is `unavailable`
//  with the broker's retry advice. Returns the ms it took from `since`.
static int64_t
s_expect_unavailable (zsock_t *gateway, const char *corr_id, int64_t since)
{
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    int64_t took = sb_clock_mono_ms () - since;
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_string_equal (msg.corr_id, corr_id);
    assert_int_equal (msg.status, SB_STATUS_UNAVAILABLE);
    assert_int_equal (msg.retry_after_ms, SB_BROKER_UNAVAILABLE_RETRY_MS);
    sb_msg_reset (&msg);
    return took;
}

//  No worker ever registered: a job sent during the start-up grace waits
//  for the grace, then is answered `unavailable`; once the grace has passed
//  the next one is answered at once and never queued.
static void
test_no_worker_registered (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.no_worker_grace_ms = 300;
    int64_t start = sb_clock_mono_ms ();
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *gateway = tb_gateway (broker);

    tb_request (gateway, "early", "api", "t", T_DEADLINE_MS, 0, "x");
    int64_t took = s_expect_unavailable (gateway, "early", start);
    assert_true (took >= 300);                  //  it waited for the grace…
    assert_true (took < T_DEADLINE_MS / 4);     //  …not for its deadline

    int64_t sent = sb_clock_mono_ms ();
    tb_request (gateway, "late", "api", "t", T_DEADLINE_MS, 0, "x");
    took = s_expect_unavailable (gateway, "late", sent);
    assert_true (took < T_DEADLINE_MS / 4);

    //  A service nobody ever served is no different
    tb_request (gateway, "other", "nosuch", "t", T_DEADLINE_MS, 0, "x");
    (void) s_expect_unavailable (gateway, "other", sent);

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.unavailable, 3);
    assert_int_equal (c.timeouts, 0);
    assert_int_equal (c.jobs_queued, 0);
    zsock_destroy (&gateway);
    tb_broker_stop (&broker);
}

//  A worker whose credit is all used is busy, not gone: the next job
//  waits for the credit (even with no grace at all) and then runs.
static void
test_busy_worker_is_not_unavailable (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.no_worker_grace_ms = 0;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "first", "api", "t", T_DEADLINE_MS, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "first");
    tb_request (gateway, "second", "api", "t", T_DEADLINE_MS, 0, "x");
    assert_true (TB_WAIT (broker, jobs_queued, 1));
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    tb_result (worker, "first", SB_STATUS_OK, "one");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "second");
    tb_result (worker, "second", SB_STATUS_OK, "two");
    for (int i = 0; i < 2; i++) {
        assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        assert_int_equal (msg.status, SB_STATUS_OK);
    }
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).unavailable, 0);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  The last worker of a service leaves while a job waits for its credit:
//  the running job is `worker_lost` as before, the waiting one is answered
//  `unavailable` once the grace has passed (not at its deadline), and so
//  is a new one. A worker registering again ends it.
static void
test_last_worker_gone_with_queued_job (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.no_worker_grace_ms = 300;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "running", "api", "t", T_DEADLINE_MS, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    tb_request (gateway, "waiting", "api", "t", T_DEADLINE_MS, 0, "x");
    assert_true (TB_WAIT (broker, jobs_queued, 1));

    int64_t left = sb_clock_mono_ms ();
    sb_msg_set_disconnect (&msg);
    assert_int_equal (sb_msg_send (worker, &msg, NULL), 0);
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "running");
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);
    int64_t took = s_expect_unavailable (gateway, "waiting", left);
    assert_true (took >= 250);                  //  the grace (less the send's own time)
    assert_true (took < T_DEADLINE_MS / 4);

    int64_t sent = sb_clock_mono_ms ();
    tb_request (gateway, "after", "api", "t", T_DEADLINE_MS, 0, "x");
    took = s_expect_unavailable (gateway, "after", sent);
    assert_true (took < T_DEADLINE_MS / 4);

    zsock_t *back = tb_worker (broker, "api", 1, 1000);
    tb_request (gateway, "served", "api", "t", T_DEADLINE_MS, 0, "x");
    assert_int_equal (tb_recv (back, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "served");
    tb_result (back, "served", SB_STATUS_OK, "fine");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "served");
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_int_equal (msg.retry_after_ms, 0);
    sb_msg_reset (&msg);

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.unavailable, 2);
    assert_int_equal (c.worker_lost, 1);
    assert_int_equal (c.timeouts, 0);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    zsock_destroy (&back);
    tb_broker_stop (&broker);
}

//  A worker that comes back within the grace (a supervisor restarted it)
//  takes the job that waited: nothing is answered `unavailable`.
static void
test_worker_back_within_grace (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.no_worker_grace_ms = 10000;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "running", "api", "t", T_DEADLINE_MS, SB_FLAG_RETRY_SAFE, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    sb_msg_set_disconnect (&msg);
    assert_int_equal (sb_msg_send (worker, &msg, NULL), 0);
    assert_true (TB_WAIT (broker, jobs_queued, 1));      //  retry-safe: waits again

    zsock_t *back = tb_worker (broker, "api", 1, 1000);
    assert_int_equal (tb_recv (back, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "running");
    assert_int_equal (msg.attempt, 2);
    tb_result (back, "running", SB_STATUS_OK, "fine");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.status, SB_STATUS_OK);
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).unavailable, 0);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    zsock_destroy (&back);
    tb_broker_stop (&broker);
}

//  A gateway's HEARTBEAT is answered with one: its sign that the broker lives.
static void
test_gateway_heartbeat_answered (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *gateway = tb_gateway (broker);
    for (int i = 0; i < 2; i++) {
        sb_msg_t msg = { 0 };
        sb_msg_set_heartbeat (&msg);
        assert_int_equal (sb_msg_send (gateway, &msg, NULL), 0);
        assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, false), SB_MSG_OK);
        assert_int_equal (msg.command, SB_CMD_HEARTBEAT);
        sb_msg_reset (&msg);
    }
    zsock_destroy (&gateway);
    tb_broker_stop (&broker);
}

int
main (void)
{
    sb_log_init ("broker-test", SB_LOG_ERROR);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_no_worker_registered),
        cmocka_unit_test (test_busy_worker_is_not_unavailable),
        cmocka_unit_test (test_last_worker_gone_with_queued_job),
        cmocka_unit_test (test_worker_back_within_grace),
        cmocka_unit_test (test_gateway_heartbeat_answered),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
