/*  tests/20_broker_routing.c — the broker's normal path, driven through raw
    DEALER sockets: request → job → result → reply, credit, load sharing,
    round-robin fairness between tenants, bounded queues, duplicates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "20_broker_support.h"
#include "sb_log.h"
#include "sb_job.h"

//  One gateway asks, one worker answers; the payload passes through unread
//  in both directions, and the JOB carries tenant, flags, attempt and the
//  time left.
static void
test_round_trip (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);

    sb_job_t job = { .op = "tools/call", .connector = "sandbox-crm",
                     .tool = "search_accounts", .args = "{\"q\":\"acme\"}" };
    zframe_t *payload = sb_job_encode (&job);
    assert_non_null (payload);
    zframe_t *sent = zframe_dup (payload);
    sb_msg_t msg = { 0 };
    assert_int_equal (sb_msg_set_request (&msg, "rt-1", "api", "tenant-a", 5000,
                                          SB_FLAG_RETRY_SAFE, &payload), 0);
    assert_int_equal (sb_msg_send (gateway, &msg, NULL), 0);

    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_JOB);
    assert_string_equal (msg.corr_id, "rt-1");
    assert_string_equal (msg.tenant, "tenant-a");
    assert_int_equal (msg.flags, SB_FLAG_RETRY_SAFE);
    assert_int_equal (msg.attempt, 1);
    assert_true (msg.timeout_ms > 0 && msg.timeout_ms <= 5000);
    assert_true (zframe_eq (msg.payload, sent));
    zframe_destroy (&sent);

    tb_result (worker, "rt-1", SB_STATUS_OK, "{\"content\":[]}");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_REPLY);
    assert_string_equal (msg.corr_id, "rt-1");
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_true (tb_payload_is (&msg, "{\"content\":[]}"));
    sb_msg_reset (&msg);

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.jobs_received, 1);
    assert_int_equal (c.jobs_dispatched, 1);
    assert_int_equal (c.results_routed, 1);
    assert_int_equal (c.jobs_replied, 1);
    assert_int_equal (c.jobs_running, 0);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  Replies go to the gateway that asked, not to another one.
static void
test_replies_to_asking_gateway (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *gw1 = tb_gateway (broker);
    zsock_t *gw2 = tb_gateway (broker);
    tb_request (gw1, "from-1", "api", "t", 5000, 0, "one");
    tb_request (gw2, "from-2", "api", "t", 5000, 0, "two");
    sb_msg_t msg = { 0 };
    for (int i = 0; i < 2; i++) {
        assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        assert_int_equal (msg.command, SB_CMD_JOB);
        char answer [SB_MAX_CORR_ID_LEN + 8];
        snprintf (answer, sizeof answer, "re:%s", msg.corr_id);
        tb_result (worker, msg.corr_id, SB_STATUS_OK, answer);
    }
    assert_int_equal (tb_recv (gw1, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "from-1");
    assert_true (tb_payload_is (&msg, "re:from-1"));
    assert_int_equal (tb_recv (gw2, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "from-2");
    assert_true (tb_payload_is (&msg, "re:from-2"));
    assert_int_equal (tb_recv (gw1, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);
    zsock_destroy (&gw1);
    zsock_destroy (&gw2);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  A worker with credit 2 holds at most 2 jobs; each result frees a slot.
static void
test_credit_respected (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 2, 1000);
    zsock_t *gateway = tb_gateway (broker);
    const char *ids [] = { "c-1", "c-2", "c-3", "c-4" };
    for (int i = 0; i < 4; i++)
        tb_request (gateway, ids [i], "api", "t", 10000, 0, "x");
    assert_true (TB_WAIT (broker, jobs_received, 4));

    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "c-1");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "c-2");
    //  All four are in; only two went out
    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.jobs_dispatched, 2);
    assert_int_equal (c.jobs_queued, 2);
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    tb_result (worker, "c-1", SB_STATUS_OK, "r1");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "c-3");
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    tb_result (worker, "c-2", SB_STATUS_OK, "r2");
    tb_result (worker, "c-3", SB_STATUS_FAILED, "{\"error\":\"bad op\"}");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "c-4");
    tb_result (worker, "c-4", SB_STATUS_OK, "r4");

    for (int i = 0; i < 4; i++) {
        assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        assert_string_equal (msg.corr_id, ids [i]);
        assert_int_equal (msg.status, i == 2 ? SB_STATUS_FAILED : SB_STATUS_OK);
    }
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  Two workers of a service share the load: the least loaded gets the next job.
static void
test_two_workers_share_load (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *w1 = tb_worker (broker, "api", 10, 1000);
    zsock_t *w2 = tb_worker (broker, "api", 10, 1000);
    zsock_t *other = tb_worker (broker, "token", 10, 1000);
    zsock_t *gateway = tb_gateway (broker);
    for (int i = 0; i < 10; i++) {
        char id [16];
        snprintf (id, sizeof id, "s-%d", i);
        tb_request (gateway, id, "api", "t", 10000, 0, "x");
    }
    assert_true (TB_WAIT (broker, jobs_dispatched, 10));
    int got1 = 0, got2 = 0;
    sb_msg_t msg = { 0 };
    while (tb_recv (w1, &msg, TB_QUIET_MS, true) == SB_MSG_OK)
        got1++;
    while (tb_recv (w2, &msg, TB_QUIET_MS, true) == SB_MSG_OK)
        got2++;
    assert_int_equal (got1 + got2, 10);
    assert_int_equal (got1, 5);
    assert_int_equal (got2, 5);
    //  A worker of another service gets none of them
    assert_int_equal (tb_recv (other, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&w1);
    zsock_destroy (&w2);
    zsock_destroy (&other);
    tb_broker_stop (&broker);
}

//  A tenant that floods the service does not starve a light tenant: the
//  queues are served round-robin, so the light tenant's two jobs come
//  among the first few dispatched.
static void
test_fairness_between_tenants (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    for (int i = 0; i < 20; i++) {
        char id [16];
        snprintf (id, sizeof id, "flood-%d", i);
        tb_request (gateway, id, "api", "flooder", 10000, 0, "x");
    }
    tb_request (gateway, "light-0", "api", "light", 10000, 0, "x");
    tb_request (gateway, "light-1", "api", "light", 10000, 0, "x");
    assert_true (TB_WAIT (broker, jobs_received, 22));

    int light_positions [2] = { -1, -1 };
    int light_seen = 0;
    sb_msg_t msg = { 0 };
    for (int position = 0; position < 22; position++) {
        assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        assert_int_equal (msg.command, SB_CMD_JOB);
        if (strcmp (msg.tenant, "light") == 0 && light_seen < 2)
            light_positions [light_seen++] = position;
        tb_result (worker, msg.corr_id, SB_STATUS_OK, "ok");
    }
    //  The first flood job went out before the rest arrived; then the
    //  tenants alternate: flood, light, flood, light…
    assert_int_equal (light_seen, 2);
    assert_in_range (light_positions [0], 1, 3);
    assert_in_range (light_positions [1], 3, 5);
    for (int i = 0; i < 22; i++)
        assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  Bounded queues: past the tenant's limit, or the service's, a request is
//  answered `overloaded` at once; the others keep waiting.
static void
test_overloaded (void **state)
{
    sb_broker_config_t config;
    tb_config (&config);
    config.max_tenant_queue = 3;
    config.max_service_queue = 5;
    tb_broker_t *broker = tb_broker_start (&config);
    zsock_t *gateway = tb_gateway (broker);
    //  No worker: everything waits in the queue
    for (int i = 0; i < 3; i++) {
        char id [16];
        snprintf (id, sizeof id, "a-%d", i);
        tb_request (gateway, id, "api", "tenant-a", 30000, 0, "x");
    }
    tb_request (gateway, "a-over", "api", "tenant-a", 30000, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "a-over");
    assert_int_equal (msg.status, SB_STATUS_OVERLOADED);

    tb_request (gateway, "b-0", "api", "tenant-b", 30000, 0, "x");
    tb_request (gateway, "b-1", "api", "tenant-b", 30000, 0, "x");
    tb_request (gateway, "c-over", "api", "tenant-c", 30000, 0, "x");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "c-over");
    assert_int_equal (msg.status, SB_STATUS_OVERLOADED);
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);

    sb_broker_counters_t c = tb_counters (broker);
    assert_int_equal (c.overloaded, 2);
    assert_int_equal (c.jobs_queued, 5);

    //  A worker arriving drains the queue: the five waiting jobs are served
    zsock_t *worker = tb_worker (broker, "api", 10, 1000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        tb_result (worker, msg.corr_id, SB_STATUS_OK, "ok");
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
        assert_int_equal (msg.status, SB_STATUS_OK);
    }
    sb_msg_reset (&msg);
    zsock_destroy (&worker);
    zsock_destroy (&gateway);
    tb_broker_stop (&broker);
}

//  A second request with a corr_id already held is answered `duplicate`;
//  the first is still served, exactly once.
static void
test_duplicate (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 4, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "dup", "api", "t", 5000, 0, "first");
    tb_request (gateway, "dup", "api", "t", 5000, 0, "second");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "dup");
    assert_int_equal (msg.status, SB_STATUS_DUPLICATE);

    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_true (tb_payload_is (&msg, "first"));
    assert_int_equal (tb_recv (worker, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    tb_result (worker, "dup", SB_STATUS_OK, "done");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_true (tb_payload_is (&msg, "done"));
    assert_int_equal (tb_recv (gateway, &msg, TB_QUIET_MS, true), SB_MSG_NONE);
    //  Once answered, the corr_id may be used again
    tb_request (gateway, "dup", "api", "t", 5000, 0, "third");
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_true (tb_payload_is (&msg, "third"));
    sb_msg_reset (&msg);
    assert_int_equal (tb_counters (broker).duplicates, 1);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

//  The "STOP" command drains: waiting jobs are refused `overloaded`, a
//  running job may still finish, workers are told DISCONNECT.
static void
test_drain_on_stop (void **state)
{
    tb_broker_t *broker = tb_broker_start (NULL);
    zsock_t *worker = tb_worker (broker, "api", 1, 1000);
    zsock_t *gateway = tb_gateway (broker);
    tb_request (gateway, "run", "api", "t", 10000, 0, "x");
    tb_request (gateway, "wait", "api", "t", 10000, 0, "x");
    sb_msg_t msg = { 0 };
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "run");
    assert_true (TB_WAIT (broker, jobs_received, 2));

    zstr_send (broker->actor, "STOP");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "wait");
    assert_int_equal (msg.status, SB_STATUS_OVERLOADED);
    tb_request (gateway, "late", "api", "t", 10000, 0, "x");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "late");
    assert_int_equal (msg.status, SB_STATUS_OVERLOADED);

    tb_result (worker, "run", SB_STATUS_OK, "finished");
    assert_int_equal (tb_recv (gateway, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_string_equal (msg.corr_id, "run");
    assert_int_equal (msg.status, SB_STATUS_OK);
    assert_int_equal (tb_recv (worker, &msg, TB_WAIT_MS, true), SB_MSG_OK);
    assert_int_equal (msg.command, SB_CMD_DISCONNECT);
    sb_msg_reset (&msg);
    zsock_destroy (&gateway);
    zsock_destroy (&worker);
    tb_broker_stop (&broker);
}

int
main (void)
{
    sb_log_init ("broker-test", SB_LOG_WARN);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_replies_to_asking_gateway),
        cmocka_unit_test (test_credit_respected),
        cmocka_unit_test (test_two_workers_share_load),
        cmocka_unit_test (test_fairness_between_tenants),
        cmocka_unit_test (test_overloaded),
        cmocka_unit_test (test_duplicate),
        cmocka_unit_test (test_drain_on_stop),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
