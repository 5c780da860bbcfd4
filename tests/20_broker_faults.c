/*  tests/20_broker_faults.c — the broker when things go wrong: deadlines
    (queued and running; a late result is never delivered), workers that
    disconnect, go silent or vanish mid-job (worker_lost, or a retry on
    another worker for retry-safe jobs), broker heartbeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"
#include "sb_clock.h"
#include "sb_log.h"

//  A job whose deadline passes while a worker holds it: the gateway gets
//  exactly one REPLY `timeout`; the worker's late result is dropped and
//  counted, and its credit comes back.
static void
test_deadline_running_then_late_result (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    int64_t start = sb_clock_mono_ms ();
    tb_request (gateway, "slow", "api", "t", 200, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "slow");
    assert_true (msg.timeout_ms <= 200);

    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    int64_t waited = sb_clock_mono_ms () - start;
    assert_string_equal (msg.corr_id, "slow");
    assert_int_equal (msg.status, SB_STATUS_TIMEOUT);
    assert_in_range (waited, 190, 1500);

    //  The worker still holds the slot: a new job waits
    tb_request (gateway, "next", "api", "t", 10000, 0, "x");
    assert_true (TB_WAIT (broker, jobs_received, 2));
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    tb_result (worker, "slow", SB_STATUS_OK, "too late");
    assert_true (TB_WAIT (broker, late_results_dropped, 1));
    //  …and the freed slot takes the waiting job
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "next");
    tb_result (worker, "next", SB_STATUS_OK, "fine");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "next");   //  not "slow" a second time
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.timeouts, 1);
    assert_int_equal (c.late_results_dropped, 1);
    assert_int_equal (c.jobs_replied, 2);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  A job for a service nobody serves waits until its deadline, then gets
//  `timeout`; one whose worker never answers frees the credit after the
//  grace period.
static void
test_deadline_queued_and_grace (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.late_grace_ms = 200;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "nobody", "webhook", "t", 150, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "nobody");
    assert_int_equal (msg.status, SB_STATUS_TIMEOUT);

    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    tb_request (gateway, "silent", "api", "t", 100, 0, "x");
    tb_request (gateway, "after", "api", "t", 5000, 0, "x");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "silent");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "silent");
    assert_int_equal (msg.status, SB_STATUS_TIMEOUT);
    //  Never answered: after deadline + grace the slot is free again
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "after");
    sb_msg_reset (&msg);
    zsock_destroy (&worker);
    zsock_destroy (&gateway);
    tb_broker_stop (&broker);
}

//  A worker that sends DISCONNECT holding two jobs: the one that is not
//  retry-safe is answered `worker_lost`, the retry-safe one runs again on
//  another worker (attempt 2) and its result reaches the gateway.
static void
test_disconnect_mid_job (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *first = tb_worker (broker, "api", 5, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "plain", "api", "t", 10000, 0, "write");
    tb_request (gateway, "safe", "api", "t", 10000, SB_FLAG_RETRY_SAFE, "read");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (first, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (tb_recv (first, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    zsock_t *second = tb_worker (broker, "api", 5, 1000);

    sb_msg_set_disconnect (&msg);
    assert_int_equal (sb_msg_send (first, &msg, NULL), 0);

    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "plain");
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);

    assert_int_equal (tb_recv (second, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_JOB);
    assert_string_equal (msg.corr_id, "safe");
    assert_int_equal (msg.attempt, 2);
    assert_true (tb_payload_is (&msg, "read"));
    tb_result (second, "safe", SB_STATUS_OK, "read-result");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "safe");
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_true (tb_payload_is (&msg, "read-result"));

    //  A result from the departed worker is not delivered
    tb_result (first, "safe", SB_STATUS_OK, "ghost");
    assert_true (TB_WAIT (broker, unknown_worker_dropped, 1));
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.worker_lost, 1);
    assert_int_equal (c.jobs_retried, 1);
    assert_int_equal (c.workers_disconnected, 1);
    assert_int_equal (c.workers, 1);
    zsock_destroy (&gateway);
    zsock_destroy (&first);
    zsock_destroy (&second);
    tb_broker_stop (&broker);
}

//  A worker that stops heartbeating is expired after 3 intervals: it had
//  heard the broker's heartbeats, it is told DISCONNECT, and its jobs are
//  answered or re-dispatched.
static void
test_expiry_mid_job (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *silent = tb_worker (broker, "api", 5, 100);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "plain", "api", "t", 10000, 0, "x");
    tb_request (gateway, "safe", "api", "t", 10000, SB_FLAG_RETRY_SAFE, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (silent, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (tb_recv (silent, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    int64_t start = sb_clock_mono_ms ();
    zsock_t *healthy = tb_worker (broker, "api", 5, 5000);

    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    int64_t waited = sb_clock_mono_ms () - start;
    assert_string_equal (msg.corr_id, "plain");
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);
    assert_in_range (waited, 150, 2000);

    assert_int_equal (tb_recv (healthy, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "safe");
    assert_int_equal (msg.attempt, 2);
    tb_result (healthy, "safe", SB_STATUS_OK, "ok");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "safe");
    assert_int_equal (msg.status, SB_STATUS_OK);

    //  What the silent worker heard: heartbeats, then DISCONNECT
    int heartbeats = 0;
    bool disconnected = false;
    while (!disconnected && tb_recv (silent, &msg, TB_WAIT_MS, false) == SB_MSG_OK) {
        if (msg.command == SB_CMD_HEARTBEAT)
            heartbeats++;
        else
        if (msg.command == SB_CMD_DISCONNECT)
            disconnected = true;
    }
    assert_true (heartbeats >= 1);
    assert_true (disconnected);
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).workers_expired, 1);
    zsock_destroy (&gateway);
    zsock_destroy (&silent);
    zsock_destroy (&healthy);
    tb_broker_stop (&broker);
}

//  A worker whose socket simply goes away (killed: no DISCONNECT) is found
//  out when the broker next sends to it, well before its expiry.
static void
test_worker_vanishes (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *doomed = tb_worker (broker, "api", 5, 500);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "plain", "api", "t", 10000, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (doomed, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    int64_t start = sb_clock_mono_ms ();
    zsock_destroy (&doomed);
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    int64_t waited = sb_clock_mono_ms () - start;
    assert_string_equal (msg.corr_id, "plain");
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);
    //  Found by the failed heartbeat (~500 ms), not by expiry (1500 ms)
    assert_in_range (waited, 0, 1200);
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).workers, 0);
    zsock_destroy (&gateway);
    tb_broker_stop (&broker);
}

//  A retry-safe job is dispatched at most max-attempts times.
static void
test_retry_exhausted (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.max_attempts = 2;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "cursed", "api", "t", 10000, SB_FLAG_RETRY_SAFE, "x");
    sb_msg_t msg = { 0 };
    for (uint32_t attempt = 1; attempt <= 2; attempt++) {
        zsock_t *worker = tb_worker (broker, "api", 1, 1000);
        assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        assert_string_equal (msg.corr_id, "cursed");
        assert_int_equal (msg.attempt, attempt);
        sb_msg_set_disconnect (&msg);
        assert_int_equal (sb_msg_send (worker, &msg, NULL), 0);
        zsock_destroy (&worker);
    }
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "cursed");
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).jobs_retried, 1);
    zsock_destroy (&gateway);
    tb_broker_stop (&broker);
}

//  A worker that sends READY again (it restarted with the same identity)
//  is a new worker: what it held is lost.
static void
test_ready_again (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 2, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "held", "api", "t", 10000, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (sb_msg_set_ready (&msg, "api", 2, 1000), 0);
    assert_int_equal (sb_msg_send (worker, &msg, NULL), 0);
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "held");
    assert_int_equal (msg.status, SB_STATUS_WORKER_LOST);
    //  …and it serves new jobs under its new registration
    tb_request (gateway, "fresh", "api", "t", 10000, 0, "x");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "fresh");
    sb_msg_reset (&msg);
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.workers_registered, 2);
    assert_int_equal (c.workers, 1);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

int
main (void)
{
    sb_log_init ("broker-test", SB_LOG_WARN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_deadline_running_then_late_result),
        cmocka_unit_test (test_deadline_queued_and_grace),
        cmocka_unit_test (test_disconnect_mid_job),
        cmocka_unit_test (test_expiry_mid_job),
        cmocka_unit_test (test_worker_vanishes),
        cmocka_unit_test (test_retry_exhausted),
        cmocka_unit_test (test_ready_again),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
